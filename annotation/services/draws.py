"""Seeded draws: what the server picks at random for a worker — the items of a qualification quiz, and per
HIT the order its synsets are tried in, how many gold slots it gets, which gold items and where they sit
(and the same for a box task: services/boxes/leasing.py, by tasks of its kind leased so far).

Each draw comes from a ``random.Random`` seeded with an HMAC (``django.utils.crypto.salted_hmac``, SHA-256,
keyed by ``SECRET_KEY``) of what identifies it: the worker, the campaign and the ordinal of this quiz or HIT
for that worker in that campaign (quiz attempts answered so far; HITs leased so far). So:

* the same database, ``SECRET_KEY`` and sequence of requests give the same draws, which makes a simulator
  run (``manage.py simulate_crowd --seed N``) on a fresh campaign repeatable;
* a worker, who knows its ids and ordinals but not the key, cannot tell which slots of its next HIT are gold
  or which quiz items come next; every HIT gets a fresh draw because its ordinal differs.

A quiz started again before it is answered gets the same items (its ordinal has not moved), so restarting
reveals no further gold images.
"""

import random

from django.utils.crypto import salted_hmac


def draw_rng(purpose: str, *ids: int) -> random.Random:
    """The generator for one draw; ``purpose`` ("quiz", "hit") keeps the streams of different draws apart."""
    digest = salted_hmac(f"annotation.draws.{purpose}", ":".join(str(i) for i in ids), algorithm="sha256")
    return random.Random(digest.digest())
