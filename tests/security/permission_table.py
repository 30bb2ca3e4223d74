"""Who may call what: every URL of the app (admin site aside, see ADMIN_PREFIX) with the status each of six
actors gets, against the world of tests/security/conftest.py. test_permission_table.py requests every cell
and checks that each URL the resolver knows has a row here, so a new URL without a row fails the suite.

Run ``python -m tests.security.permission_table > docs/permissions.md`` after editing; a test checks that
the file matches.

Actors: anonymous; ``worker`` (the owner of the HIT, quiz, box task and earnings in the paths);
``other_worker`` (another crowd worker, qualified nowhere); ``researcher`` (owner of the campaign, import
and dataset version in the paths); ``other_researcher`` (owns another campaign); ``admin``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

ACTORS = ["anonymous", "worker", "other_worker", "researcher", "other_researcher", "admin"]
# Every admin-site URL answers non-staff users with a redirect to the admin sign-in (tested one by one).
ADMIN_PREFIX = "admin/"

Body = dict | Callable[[object], dict] | None


@dataclass(frozen=True)
class Row:
    name: str  # the URL pattern's name
    method: str
    path: str  # with {placeholders} filled from the world (see test_permission_table.placeholders)
    expect: tuple[int, int, int, int, int, int]  # in ACTORS order
    body: Body = None
    note: str = ""
    fmt: str = field(default="json")


def _hit_answers(world) -> dict:
    items = world.hit.items.order_by("position")
    return {
        "idempotency_key": "table-hit-1",
        "answers": [{"item": i.id, "answer": "present", "ms": 900} for i in items],
    }


def _quiz_answers(world) -> dict:
    return {"answers": {str(item): True for item in world.attempt.items}}


def _box_answers(world) -> dict:
    items = world.box_task.items.order_by("position")
    return {"idempotency_key": "table-box-1", "answers": [{"item": i.id, "answer": "skip", "ms": 900} for i in items]}


PUBLIC = (200,) * 6
SIGNED_IN = (401, 200, 200, 200, 200, 200)
RESEARCH_ALL = (401, 403, 403, 200, 200, 200)  # any researcher; the data is filtered to their own
RESEARCH_OWN = (401, 403, 403, 200, 404, 200)  # the owner and admins; another researcher gets 404
PAGE_SIGNED_IN = (302, 200, 200, 200, 200, 200)
PAGE_RESEARCH_ALL = (302, 403, 403, 200, 200, 200)
PAGE_RESEARCH_OWN = (302, 403, 403, 200, 404, 200)
PAGE_ADMIN = (302, 403, 403, 403, 403, 200)
OWNER_WORKER = (401, 201, 404, 404, 404, 404)  # a worker's own HIT / box task; anyone else's does not exist

C = "/api/v1/campaigns/{campaign}"

ROWS: list[Row] = [
    # ---- taxonomy: public reference data
    Row("synset-search", "GET", "/api/v1/synsets/?q=circle", PUBLIC),
    Row("synset-detail", "GET", "/api/v1/synsets/{wnid}/", PUBLIC),
    Row("synset-descendants", "GET", "/api/v1/synsets/{wnid}/descendants/", PUBLIC),
    Row("label-set-check", "POST", "/api/v1/label-sets/check/", PUBLIC, {"wnids": ["n13873502", "n13878634"]}),
    # ---- image imports: researchers; a batch is its creator's (and the admins')
    Row("image-imports", "POST", "/api/v1/image-imports/", (401, 403, 403, 202, 403, 202),
        {"synset": "n13873502", "urls": ["https://example.org/a.jpg"]},
        note="403 for another researcher: the synset is in the owner's running campaign, whose queue it would fill"),
    Row("image-import-detail", "GET", "/api/v1/image-imports/{batch}/", RESEARCH_OWN),
    Row("image-import-items", "GET", "/api/v1/image-imports/{batch}/items/", RESEARCH_OWN),
    Row("synset-candidates", "GET", "/api/v1/synsets/{wnid}/candidates/", RESEARCH_ALL,
        note="the candidate pool of a synset is shared by every campaign that labels it"),
    # ---- crowd work: only qualified workers lease work; answers and earnings are the worker's own
    Row("hit-next", "POST", C + "/hits/next/", (401, 200, 403, 403, 403, 403),
        note="403: pass the campaign's quiz first"),
    Row("quiz-start", "POST", C + "/quiz/", (401, 409, 201, 201, 201, 201), note="409: already qualified"),
    Row("hit-submit", "POST", "/api/v1/hits/{hit}/submit/", OWNER_WORKER, _hit_answers),
    Row("hit-release", "POST", "/api/v1/hits/{hit}/release/", (401, 204, 404, 404, 404, 404),
        note="the labelling page's goodbye when it closes"),
    Row("quiz-submit", "POST", "/api/v1/quizzes/{quiz}/submit/", (401, 200, 404, 404, 404, 404), _quiz_answers),
    Row("worker-profile", "GET", "/api/v1/me/", SIGNED_IN, note="always the caller's own figures"),
    Row("box-task-next", "POST", C + "/boxes/draw/next/", (401, 200, 403, 403, 403, 403),
        note="403: pass the campaign's quiz first"),
    Row("box-task-submit", "POST", "/api/v1/box-tasks/{box_task}/submit/", OWNER_WORKER, _box_answers),
    Row("box-task-release", "POST", "/api/v1/box-tasks/{box_task}/release/", (401, 204, 404, 404, 404, 404),
        note="the box pages' goodbye when they close"),
    # ---- campaigns: researchers their own, admins all
    Row("campaign-list", "GET", "/api/v1/campaigns/", RESEARCH_ALL, note="lists only the caller's campaigns"),
    Row("campaign-list", "POST", "/api/v1/campaigns/", (401, 403, 403, 201, 403, 201),
        {"name": "squares", "wnids": ["n13878634"]},
        note="403 for another researcher: the synset is in the owner's unfinished campaign, whose images it shares"),
    Row("label-set-expand", "GET", "/api/v1/campaigns/label-set/expand/?root={wnid}&mode=self", RESEARCH_ALL),
    Row("campaign-detail", "GET", C + "/", RESEARCH_OWN),
    Row("campaign-detail", "PATCH", C + "/", RESEARCH_OWN, {"gold_rate": 0.1}, note="changes the policy"),
    Row("campaign-state", "POST", C + "/state/", RESEARCH_OWN, {"state": "paused"}),
    Row("campaign-synset", "GET", C + "/synsets/{wnid}/", RESEARCH_OWN),
    Row("campaign-synset-candidates", "GET", C + "/synsets/{wnid}/candidates/", RESEARCH_OWN),
    Row("campaign-synset-disagreements", "GET", C + "/synsets/{wnid}/disagreements/", RESEARCH_OWN),
    Row("campaign-gold-promote", "POST", C + "/synsets/{wnid}/gold/promote/", (401, 403, 403, 201, 404, 201),
        {"limit": 5}),
    Row("candidate-override", "POST", C + "/candidates/{candidate}/override/", (401, 403, 403, 201, 404, 201),
        {"action": "accept", "reason": "clearly a circle"}),
    Row("campaign-synset-audit", "GET", C + "/synsets/{wnid}/audit/", RESEARCH_OWN),
    Row("candidate-audit", "POST", C + "/candidates/{accepted}/audit/", (401, 403, 403, 201, 404, 201),
        {"correct": True}, note="a verdict on an accepted image the synset's precision audit drew"),
    Row("candidate-gold", "POST", C + "/candidates/{accepted}/gold/", (401, 403, 403, 201, 404, 201),
        {"present": True}),
    Row("campaign-worker-block", "POST", C + "/workers/{worker_id}/block/", (401, 403, 403, 201, 404, 201),
        {"reason": "always answers present"}),
    Row("campaign-worker-unblock", "POST", C + "/workers/{worker_id}/unblock/", (*RESEARCH_OWN[:3], 409, 404, 409),
        {"reason": "appeal upheld"}, note="409: not blocked in this campaign"),
    *[Row(f"dashboard-{panel}", "GET", C + f"/dashboard/{panel}/", RESEARCH_OWN)
      for panel in ["summary", "throughput", "progress", "tree", "quality", "cost"]],
    # ---- accounts
    Row("auth-token", "POST", "/api/v1/auth/token/", (400,) * 6, {"username": "worker", "password": "wrong"},
        note="a token for the right password; throttled"),
    Row("external-worker", "POST", "/api/v1/workers/external/", (403,) * 6,
        {"external_id": "market-1", "signature": "0" * 64}, note="403 until EXTERNAL_WORKER_SECRET is set"),
    # ---- dataset versions: researchers for their own campaigns, admins all
    Row("dataset-list", "GET", "/api/v1/datasets/", RESEARCH_ALL,
        note="the caller's versions and every version of a campaign they own"),
    Row("dataset-list", "POST", "/api/v1/datasets/", (401, 403, 403, 202, 403, 202),
        {"name": "circles-again", "campaigns": ["{campaign}"]}),
    Row("dataset-detail", "GET", "/api/v1/datasets/{version}/", RESEARCH_OWN,
        note="its creator, the owners of its campaigns and admins"),
    Row("dataset-download", "GET", "/api/v1/datasets/{version}/download/", RESEARCH_OWN,
        note="the same; 409 with a sentence while not done"),
    # ---- API description
    Row("schema", "GET", "/api/v1/schema/", PUBLIC),
    Row("api-docs", "GET", "/api/v1/docs/", PUBLIC),
    Row("api-redoc", "GET", "/api/v1/redoc/", PUBLIC),
    # ---- outside the API
    Row("metrics", "GET", "/metrics", (401, 403, 403, 403, 403, 200),
        note="an admin's session, or a scraper's bearer METRICS_TOKEN"),
    Row("media-file", "GET", "/media/{media}", PUBLIC, note="content-addressed: the name is the SHA-256"),
    Row("healthz", "GET", "/healthz", PUBLIC, note="database and cache reachable: 200, else 503"),
    # ---- pages
    Row("home", "GET", "/", PUBLIC),
    Row("taxonomy-search", "GET", "/taxonomy/?q=circle", PUBLIC),
    Row("synset-detail-page", "GET", "/taxonomy/{wnid}/", PUBLIC),
    Row("work-home", "GET", "/work/", PAGE_SIGNED_IN),
    Row(
        "label",
        "GET",
        "/work/{campaign}/",
        (302, 200, 302, 302, 302, 302),
        note="a shell: its data comes from the API; who has not passed the campaign's quiz is sent to it",
    ),
    Row("quiz", "GET", "/work/{campaign}/quiz/", PAGE_SIGNED_IN),
    Row("box-draw", "GET", "/work/{campaign}/boxes/draw/", PAGE_SIGNED_IN),
    Row("box-verify", "GET", "/work/{campaign}/boxes/quality/", PAGE_SIGNED_IN),
    Row("research-campaigns", "GET", "/research/", PAGE_RESEARCH_ALL),
    Row("research-campaign-new", "GET", "/research/new/", PAGE_RESEARCH_ALL),
    Row("research-dashboard", "GET", "/research/{campaign}/", PAGE_RESEARCH_OWN),
    Row("research-synset", "GET", "/research/{campaign}/synsets/{wnid}/", PAGE_RESEARCH_OWN),
    Row("research-workers", "GET", "/manage/workers/", PAGE_ADMIN),
    Row("research-workers", "POST", "/manage/workers/", (*PAGE_ADMIN[:5], 302),
        {"action": "block", "worker": "{worker_id}", "reason": "spam"}, fmt="form"),
    Row("research-payouts-csv", "GET", "/manage/payouts.csv", PAGE_ADMIN),
    Row("signup", "GET", "/accounts/signup/", PUBLIC),
    Row("signup", "POST", "/accounts/signup/", PUBLIC, {"username": "new", "password1": "a", "password2": "b"},
        note="the form again with its errors; rate limited", fmt="form"),
    Row("login", "GET", "/accounts/login/", PUBLIC),
    Row("login", "POST", "/accounts/login/", PUBLIC, {"username": "worker", "password": "wrong"},
        note="the form again with its error; rate limited", fmt="form"),
    Row("login", "PUT", "/accounts/login/", PUBLIC, {"username": "worker", "password": "wrong"},
        note="Django's form view; a PUT body is never read, so no password is checked", fmt="form"),
    Row("logout", "POST", "/accounts/logout/", (302,) * 6, fmt="form"),
]  # fmt: skip


def markdown() -> str:
    head = ["method", "path", *ACTORS, "note"]
    lines = [
        "# Who may call what",
        "",
        "Generated from `tests/security/permission_table.py` (`python -m tests.security.permission_table >",
        "docs/permissions.md`) and checked by `tests/security/test_permission_table.py`, which requests every",
        "cell below against a seeded world and fails when the resolver knows a URL that has no row here.",
        "",
        "- **worker**: owns the HIT, quiz attempt, box task and earnings in the paths; qualified in the campaign.",
        "- **other_worker**: another crowd worker, qualified in no campaign.",
        "- **researcher**: owns the campaign `{campaign}`, the import `{batch}` and the dataset version `{version}`.",
        "- **other_researcher**: owns another campaign; someone else's campaign, import or version answers 404.",
        "- **admin**: a superuser; sees every campaign.",
        "",
        "Pages answer anonymous visitors with 302 to the sign-in page; the API answers 401. Every denial leaves",
        "the database as it was (tested). Every admin-site URL (`/admin/...`) sends non-staff users to the admin",
        "sign-in (tested one by one).",
        "",
        "What a crowd worker never sees, tested beside the table: gold answers (a HIT, quiz or box task carries",
        "no gold flag, answer, vote count, state or posterior), other workers' answers or earnings (`/api/v1/me/`",
        "is always the caller's own; someone else's HIT, quiz or box task answers 404), consensus results of",
        "items still being voted on (the candidate lists are for researchers only), researcher pages (403).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in ROWS:
        cells = [row.method, f"`{row.path}`", *map(str, row.expect), row.note]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
