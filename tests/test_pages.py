"""The pages of `mlprov serve` in real Chromium (Debian's, driven by Playwright), over the
real server on loopback, on the demo's ledger: sign-in, the overview, a build's lineage
graph, the `why` answer and its proof, and the reviewer's quarantine form; and every page
refuses whoever may not open it (the pages are read from the app's own routes)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from tests.serving import REVIEWER, Served, make_tokens, serving
from tests.test_cli import MLPROV, mlprov, ok

from mlprov.answers.lineage import lineage
from mlprov.answers.triage import triage
from mlprov.demo import Demo, run
from mlprov.facade import Ledger
from mlprov.server.app import ROUTERS, create_app
from mlprov.server.auth import COOKIE, PERMISSION_KEY
from mlprov.server.tokens import Permission

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.skipif(MLPROV is None, reason="the mlprov console script is not installed"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is missing"),
]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Site:
    """The demo's ledger served, its tokens, and where screenshots go."""

    def __init__(self, served: Served, demo: Demo, shots: Path) -> None:
        self.served, self.demo, self.shots = served, demo, shots
        self.root = served.base.removesuffix("/api/v1")
        self.home = demo.directory

    def size(self) -> int:
        with Ledger.open(cwd=self.home) as ledger:
            return ledger.size


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("pages")
    demo = run(base / "incident", lambda _: None)
    with Ledger.open(cwd=demo.directory) as ledger:
        tokens = make_tokens(ledger)
    with serving(demo.directory) as served:
        served.tokens = tokens
        yield Site(served, demo, tmp_path_factory.mktemp("screenshots"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def signed_in(browser: Any, site: Site, role: str) -> Any:
    """A fresh browser context signed in with the token of `role` through the form."""
    context = browser.new_context(viewport={"width": 1366, "height": 860})
    page = context.new_page()
    page.goto(site.root + "/")
    assert page.url == site.root + "/sign-in"
    page.get_by_label("Token").fill(site.served.tokens[role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(site.root + "/")
    return page


def submit(page: Any) -> None:
    """Press Enter in the focused field, as a person would, and wait for the answer."""
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_without_a_session_a_page_asks_to_sign_in(browser: Any, site: Site) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(site.root + "/builds/" + site.demo.v7.event.name)  # type: ignore[union-attr]
    assert page.url == site.root + "/sign-in"
    page.get_by_label("Token").fill("mlp_" + "A" * 43)
    submit(page)
    assert "That token was refused" in page.get_by_role("alert").inner_text()
    page.get_by_label("Token").fill(site.served.tokens["revoked"])
    submit(page)
    assert "revoked" in page.get_by_role("alert").inner_text()
    cookies = context.cookies()
    assert not cookies
    page.get_by_label("Token").fill(site.served.tokens["reader"])
    submit(page)
    assert page.url == site.root + "/"
    (cookie,) = context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (COOKIE, True, "Strict")
    assert page.evaluate("document.cookie") == ""  # no script can read the token
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(site.root + "/sign-in")
    assert not context.cookies()
    # the API still answers 401 without a token, never a redirect
    assert site.served.call("GET", "/audit").status_code == 401
    context.close()


def test_the_overview_is_the_audit_and_verify(browser: Any, site: Site) -> None:
    page = signed_in(browser, site, "reader")
    audit = site.served.as_("reader", "GET", "/audit").json()
    status = site.served.as_("reader", "GET", "/verify").json()
    text = page.locator("main").inner_text()
    assert "verifies" in text and status["ok"]
    assert f"covers {status['checkpoint']['size']:,} of {status['size']:,} events" in text
    summary = audit["summary"]
    assert f"{summary['sources_complete']} of {summary['sources']}" in text
    sources = page.locator("h2:text('Sources') + table tbody tr")
    assert sources.count() == summary["sources"]
    for row in range(sources.count()):
        name = sources.nth(row).locator("td").first.inner_text()
        state = site.served.as_("reader", "GET", "/status", params={"target": name}).json()
        assert sources.nth(row).locator("td").nth(1).inner_text() == state["state"].replace(
            "_", " "
        )
    # no script runs, nothing is fetched, the page is not cached
    shown = page.goto(site.root + "/")
    assert shown is not None
    assert "default-src 'none'" in shown.headers["content-security-policy"]
    assert shown.headers["cache-control"] == "no-store"
    assert page.locator("script").count() == 0
    # keyboard: the first Tab stops are the site's name and the page links, in order
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Overview"
    page.keyboard.press("Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == site.root + "/why"
    page.go_back()
    builds = page.locator("h2:text('Builds') + table tbody tr")
    assert builds.count() == summary["builds"]
    page.screenshot(path=site.shots / "overview.png", full_page=True)
    page.context.close()


def test_the_build_page_shows_its_lineage_graph(browser: Any, site: Site) -> None:
    v7 = site.demo.v7
    assert v7 is not None
    page = signed_in(browser, site, "reader")
    page.get_by_role("link", name=v7.event.name, exact=True).click()
    page.wait_for_url(f"{site.root}/builds/{v7.digest}")
    with Ledger.open(cwd=site.home) as ledger:
        graph = lineage(ledger, v7)
        rows = triage(ledger, v7).rows
    svg = page.locator("figure.graph svg")
    assert svg.count() == 1
    drawn = set(svg.locator("g.node > title").all_text_contents())
    assert {n.id for n in graph.nodes} <= drawn  # every node (beside the legend's)
    linked = {
        svg.locator("a").nth(i).get_attribute("xlink:href") for i in range(svg.locator("a").count())
    }
    assert {f"/events/{n.event}" for n in graph.nodes if n.event} <= linked
    assert page.locator("h2:text('Triage') + table tbody tr").count() == len(rows)
    steps = page.locator("h2:text('Steps and their exclusion reports') + table tbody tr")
    assert steps.count() == len(graph.steps)
    first = graph.steps[0]
    assert steps.first.locator("td").nth(3).inner_text() == dict(first.details)["records"]
    page.screenshot(path=site.shots / "build.png", full_page=True)
    # a node of the graph leads to its event
    page.locator(f'figure.graph a[*|href="/events/{graph.steps[0].event}"]').first.click()
    page.wait_for_url(f"{site.root}/events/{graph.steps[0].event}")
    assert first.label in page.locator("h1").inner_text()
    page.context.close()


def test_why_answers_the_demo_customer_with_a_proof_that_checks(
    browser: Any, site: Site, tmp_path: Path
) -> None:
    v7 = site.demo.v7
    assert v7 is not None
    page = signed_in(browser, site, "reader")
    page.get_by_role("link", name="Why").click()
    page.get_by_label("Model (a build)").fill(v7.event.name)
    page.get_by_label("Subject id").fill(site.demo.asker)
    page.get_by_role("button", name="Ask").click()
    assert page.url == site.root + "/why"  # the person's id is in no URL
    printed = json.loads(
        ok(mlprov("why", "--model", v7.event.name, "--subject", site.demo.asker, "--json",
                  cwd=site.home))
    )  # fmt: skip
    assert page.locator("h1 .badge").inner_text() == "yes" and printed["present"] is True
    text = page.locator("main").inner_text()
    assert printed["verdict"] in text
    assert "Path" in text and "Why" in text
    links = page.locator("main a[href^='/events/']")
    assert links.count() >= 3  # each digest shortened with its ellipsis, whole in its title
    for i in range(links.count()):
        link = links.nth(i)
        assert link.get_attribute("href") == "/events/" + link.get_attribute("title")
        assert link.inner_text().endswith("…")
    page.screenshot(path=site.shots / "why.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the proof (JSON)").click()
    proof = tmp_path / "proof.json"
    download.value.save_as(proof)
    assert json.loads(proof.read_text()) == printed
    ok(mlprov("check-proof", proof, cwd=site.home))
    # a bad question is a clear error on the page, not a traceback
    page.get_by_label("Or a record key").fill("1")
    page.get_by_role("button", name="Ask").click()
    assert "not both" in page.get_by_role("alert").inner_text()
    page.context.close()


def test_a_reviewer_quarantines_through_the_form(browser: Any, site: Site) -> None:
    page = signed_in(browser, site, "carol")
    page.get_by_role("link", name="Review").click()
    source = page.get_by_label("Source").first
    chosen = source.locator("option").first.get_attribute("value")
    assert chosen
    source.select_option(chosen)
    page.get_by_label("Trigger").fill("a customer wrote in")
    page.get_by_label("Exit condition").fill("a new review")
    page.get_by_label("Allowed uses").fill("incident-reproduction")
    page.screenshot(path=site.shots / "review.png", full_page=True)
    before = site.size()
    page.get_by_role("button", name="Record the quarantine").click()
    page.wait_for_url(re.compile(r".*/events/sha256:[0-9a-f]{64}$"))  # the form's redirect
    digest = re.fullmatch(rf"{re.escape(site.root)}/events/(sha256:[0-9a-f]{{64}})", page.url)
    assert digest is not None
    shown = site.served.as_("reader", "GET", f"/events/{digest.group(1)}").json()
    assert (shown["type"], shown["actor"]) == ("quarantine", REVIEWER)
    assert shown["payload"]["allowed_use"] == ["incident-reproduction"]
    # the event's place in the log: the one event this click recorded
    assert shown["seq"] == before and site.size() == before + 1, (shown["seq"], before)
    state = site.served.as_("reader", "GET", "/status", params={"target": chosen}).json()
    assert state["state"] == "quarantined"
    ok(mlprov("verify", cwd=site.home))
    # again: the form no longer offers it, and a post the table refuses is a page saying
    # so, with nothing recorded
    size = site.size()
    page.goto(site.root + "/review")
    assert chosen not in page.get_by_label("Source").first.inner_text()
    again = page.request.post(
        site.root + "/review/quarantine",
        form={"source": chosen, "trigger": "t", "exit_condition": "e"},
        headers={"Origin": site.root},
    )
    assert again.status == 409 and "legal moves" in again.text()
    assert again.headers["content-type"].startswith("text/html")
    assert site.size() == size
    # a review recorded since meets the exit condition: the release form lifts it
    review = site.served.as_("carol", "POST", "/reviews", json={"target": chosen,
                                                                "status": "accepted"})
    assert review.status_code == 201, review.text  # fmt: skip
    page.goto(site.root + "/review")
    page.locator("form[action='/review/release']").get_by_label("Source").select_option(chosen)
    page.get_by_label("Evidence").fill(review.json()["digest"])
    page.get_by_label("Note").fill("reviewed again")
    page.get_by_role("button", name="Record the release").click()
    page.wait_for_url(re.compile(r".*/events/sha256:[0-9a-f]{64}$"))
    assert "/events/sha256:" in page.url
    assert REVIEWER in page.locator("main table").first.inner_text()
    state = site.served.as_("reader", "GET", "/status", params={"target": chosen}).json()
    assert state["state"] == "accepted"
    page.context.close()
    ok(mlprov("verify", cwd=site.home))


def test_a_dataset_page_and_clear_empty_and_error_states(browser: Any, site: Site) -> None:
    page = signed_in(browser, site, "reader")
    page.get_by_role("link", name="support-classifier-training").first.click()
    page.wait_for_url(re.compile(r".*/datasets/sha256:[0-9a-f]{64}$"))
    assert page.locator("figure.graph svg").count() == 1
    assert page.locator("h1").inner_text().startswith("Dataset support-classifier-training")
    missing = page.goto(site.root + "/builds/no-such-build")
    assert missing is not None and missing.status == 404
    assert "no-such-build" in page.get_by_role("alert").inner_text()
    assert "Traceback" not in page.content()
    unknown = page.goto(site.root + "/events/sha256:" + "0" * 64)
    assert unknown is not None and unknown.status == 404
    page.context.close()


def test_a_reader_sees_no_form_and_a_forged_post_is_refused(browser: Any, site: Site) -> None:
    page = signed_in(browser, site, "reader")
    page.goto(site.root + "/review")
    assert "may read but not record" in page.locator(".notice").inner_text()
    assert page.locator("form[action='/review/quarantine']").count() == 0
    before = site.size()
    form = {"source": "anything", "trigger": "t", "exit_condition": "e"}
    forged = page.request.post(
        site.root + "/review/quarantine", form=form, headers={"Origin": site.root}
    )
    assert forged.status == 403 and "reader" in forged.text()
    page.context.close()
    # a reviewer's cookie sent by another site (or with no Origin) is refused too
    cookie = {"Cookie": f"{COOKIE}={site.served.tokens['carol']}"}
    for origin in ({"Origin": "http://evil.example"}, {}):
        response = site.served.client.post(
            site.root + "/review/quarantine", data=form, headers=cookie | origin
        )
        assert response.status_code == 403, response.text
        assert "own pages" in response.text
    assert site.size() == before


def test_every_page_is_guarded(site: Site) -> None:
    """Pages are not in the API's OpenAPI document: they are read from the app's routes,
    and every route of the app is one or the other, so none escapes the checks."""
    app = create_app(str(site.home / ".mlprov" / "ledger.db"))
    try:
        documented = set(app.openapi()["paths"])
        own = [r for r in app.routes if isinstance(r, APIRoute)]
        # the app's routes are its own and those of ROUTERS, and nothing else
        assert len(app.routes) == len(own) + len(ROUTERS)
    finally:
        app.state.mlprov.close()
    routes = own + [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert all(isinstance(r, APIRoute) for router in ROUTERS for r in router.routes)
    pages = [r for r in routes if not r.include_in_schema]
    assert {r.path.replace(":path", "") for r in routes if r.include_in_schema} == documented
    assert len(pages) >= 10
    params = {"ref": "support-classifier-v7", "digest": str(site.demo.v7.digest)}  # type: ignore[union-attr]
    before = site.size()
    client = site.served.client
    for route in pages:
        needed = Permission((route.openapi_extra or {})[PERMISSION_KEY])
        url = site.root + re.sub(r"\{(\w+)(:path)?\}", lambda m: params[m.group(1)], route.path)
        for method in route.methods:
            if route.path == "/api/v1/openapi.json" or needed is Permission.PUBLIC:
                continue
            for cookie in ({}, {"Cookie": f"{COOKIE}=mlp_{'A' * 43}"},
                           {"Cookie": f"{COOKIE}={site.served.tokens['revoked']}"}):  # fmt: skip
                response = client.request(
                    method, url, headers=cookie | {"Origin": site.root}, follow_redirects=False
                )
                assert response.status_code == 303, (method, url, response.text)
                assert response.headers["location"] == "/sign-in"
            if needed is Permission.REVIEW:
                for role in ("reader", "recorder", "admin"):
                    response = client.request(
                        method,
                        url,
                        headers={"Cookie": f"{COOKIE}={site.served.tokens[role]}",
                                 "Origin": site.root},
                        data={"source": "x", "trigger": "t", "exit_condition": "e"},
                    )  # fmt: skip
                    assert response.status_code == 403, (method, url, role)
    assert site.size() == before
