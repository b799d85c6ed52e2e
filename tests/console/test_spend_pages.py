"""The console's spend pages over HTTP, against a real console and edge: a key's budget from the
form (and a bad one refused, naming the field), the usage report's CSV passed through from the
edge, and other users' usage and budgets, which the edge, not the console, keeps to admins."""

import csv
import io
import secrets
from datetime import UTC, datetime

import httpx

from services.fleet.plan import FleetConfig
from tests.console.support import csrf_of, signed_in_client, spent, token_of


def test_a_key_gets_its_budget_from_the_form_and_a_bad_amount_is_refused(
    console: httpx.Client, console_fleet: FleetConfig
) -> None:
    cookie = signed_in_client(console, console_fleet, f"budget-form-{secrets.token_hex(4)}@x.io")
    headers = {"cookie": cookie, "origin": str(console.base_url)}
    csrf = csrf_of(console.get("/console/api-keys", headers={"cookie": cookie}))
    form = {"csrf_token": csrf, "name": "weekly", "amount_usd": "$1,250.5", "period": "week"}

    for amount in ("abc", "0", "-3", "1.123456789", "1000001", "nan"):
        refused = console.post(
            "/console/api-keys", data={**form, "amount_usd": amount}, headers=headers
        )
        assert refused.status_code == 400, (amount, refused.text)
        assert "Budget must be an amount in USD" in refused.text
        assert f'value="{amount}"' in refused.text  # kept in the form to correct
    bad_period = console.post("/console/api-keys", data={**form, "period": "year"}, headers=headers)
    assert bad_period.status_code == 400 and "Budget period must be" in bad_period.text

    created = console.post("/console/api-keys", data=form, headers=headers)
    assert created.status_code == 201, created.text
    auth = {"authorization": f"Bearer {token_of(cookie)}"}
    listed = httpx.get(f"{console_fleet.edge_url}/api/v1/api-keys", headers=auth).json()
    (key,) = listed["api_keys"]
    assert key["name"] == "weekly"
    assert (key["budget"]["amount_usd"], key["budget"]["period"]) == (1250.5, "week")
    assert "$1,250.50 a week" in created.text


def test_the_csv_is_the_edges_own_and_other_peoples_usage_is_the_edges_to_refuse(
    console: httpx.Client, console_fleet: FleetConfig
) -> None:
    cookie = signed_in_client(console, console_fleet, f"csv-{secrets.token_hex(4)}@x.io")
    own, auth = {"cookie": cookie}, {"authorization": f"Bearer {token_of(cookie)}"}
    model = "openai/text-embedding-3-small"
    embedded = httpx.post(
        f"{console_fleet.edge_url}/api/v1/embeddings",
        json={"provider": "openrouter", "model": model, "input": "hello"},
        headers=auth,
        timeout=30,
    )
    assert embedded.status_code == 200, embedded.text
    spent(console_fleet, token_of(cookie))  # its record is stored
    today = datetime.now(UTC).date().isoformat()

    query = f"from={today}&to={today}&group_by=day&group_by=model&whose=me"
    exported = console.get(f"/console/usage.csv?{query}", headers=own)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="usage-{today}-{today}.csv"'
    )
    params = {"from": today, "to": today, "group_by": "day,model", "format": "csv"}
    direct = httpx.get(f"{console_fleet.edge_url}/api/v1/usage", params=params, headers=auth)
    assert exported.text == direct.text
    header, line = list(csv.reader(io.StringIO(exported.text)))
    assert header[:3] == ["day", "model", "requests"]
    assert line[:3] == [today, model, "1"]

    # Not an admin: the page offers no other view, and the edge refuses one asked for by hand.
    page = console.get("/console/usage", headers=own)
    assert page.status_code == 200 and 'name="whose"' not in page.text
    for whose in ("whose=all", "whose=user&user_id=usr_someone_else"):
        refused = console.get(f"/console/usage?{whose}", headers=own)
        assert refused.status_code == 403 and "Admin role required" in refused.text, whose
        assert console.get(f"/console/usage.csv?{whose}", headers=own).status_code == 403
    bad_id = console.get("/console/usage?whose=user&user_id=not%20an%20id", headers=own)
    assert bad_id.status_code == 400 and "A user id is" in bad_id.text
