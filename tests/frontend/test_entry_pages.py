"""Where each kind of visitor goes from the home page and the sign-in page."""

import pytest
from django.urls import reverse

from workers.roles import Role
from workers.services import account_create

pytestmark = pytest.mark.django_db


def entry_links(client) -> str:
    html = client.get(reverse("home")).content.decode()
    return html[html.index('id="entry"') : html.index("</p>", html.index('id="entry"'))]


def test_a_visitor_is_offered_sign_up_and_sign_in(client):
    entry = entry_links(client)
    assert f'href="{reverse("signup")}"' in entry and f'href="{reverse("login")}"' in entry
    assert reverse("work-home") not in entry
    assert f'href="{reverse("signup")}"' in client.get(reverse("login")).content.decode()


def test_a_worker_is_sent_to_labelling_not_to_campaigns(client):
    client.force_login(account_create(username="w", password="worker-pw-123", role=Role.WORKER))
    entry = entry_links(client)
    assert f'href="{reverse("work-home")}"' in entry
    assert reverse("research-campaigns") not in entry
    assert f'<a href="{reverse("work-home")}">Work</a>' in client.get(reverse("home")).content.decode()  # the nav


def test_a_researcher_finds_labelling_and_their_campaigns(client):
    client.force_login(account_create(username="r", password="researcher-pw-123", role=Role.RESEARCHER))
    entry = entry_links(client)
    assert f'href="{reverse("work-home")}"' in entry and f'href="{reverse("research-campaigns")}"' in entry
