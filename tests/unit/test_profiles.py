"""Long-term profiles: store selection, the remember node, forget, feedback CLI."""

import json
import sqlite3

import pytest
from fakes import fake_llm
from typer.testing import CliRunner

from recpilot.agent.graph import build_graph, turn_input
from recpilot.agent.intent_rules import parse_facts, parse_lifted
from recpilot.agent.profile_ops import forget_user
from recpilot.agent.runner import Recommender
from recpilot.agent.services import build_services
from recpilot.cli.main import app
from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.stores.profiles import (
    StoreUnavailableError,
    UserProfile,
    forget_profile,
    load_profile,
    open_store,
    save_profile,
    store_backend,
)


def test_store_backend_selection(tmp_path):
    base = Settings(home=tmp_path, _env_file=None)
    assert store_backend(base) == ("sqlite", str(tmp_path / "profiles.sqlite"))
    other = base.model_copy(update={"store_url": str(tmp_path / "x.db")})
    assert store_backend(other) == ("sqlite", str(tmp_path / "x.db"))
    pg = base.model_copy(update={"store_url": "postgresql://u:p@db:5432/rec"})
    assert store_backend(pg) == ("postgres", "postgresql://u:p@db:5432/rec")


def test_postgres_without_its_driver_is_a_clear_error(tmp_path):
    pytest.importorskip("langgraph.store.base")
    try:
        import langgraph.store.postgres  # noqa: F401

        pytest.skip("langgraph-checkpoint-postgres is installed")
    except ImportError:
        pass
    settings = Settings(home=tmp_path, store_url="postgres://x/y", _env_file=None)
    with pytest.raises(StoreUnavailableError, match=r"recpilot\[postgres\]"):
        with open_store(settings):
            pass


def test_profile_round_trip_and_forget_leaves_no_row(tmp_path):
    settings = Settings(home=tmp_path, _env_file=None)
    with open_store(settings) as store:
        profile = UserProfile(user_id="alice")
        profile.like("1")
        profile.dislike("4")
        profile.like("4")  # changing one's mind moves the item
        profile.avoid(["Horror"])
        save_profile(store, profile)
        save_profile(store, UserProfile(user_id="bob", liked=["2"]))
    with open_store(settings) as store:  # a new connection: persisted
        again = load_profile(store, "alice")
        assert again.liked == ["1", "4"] and again.disliked == [] and again.updated_at
        assert forget_profile(store, "alice") == 1
        assert load_profile(store, "alice").is_empty()
    rows = sqlite3.connect(tmp_path / "profiles.sqlite").execute("SELECT prefix FROM store")
    assert [r[0] for r in rows] == ["users.bob"]


def test_rules_read_lifted_exclusions_and_facts(tiny_settings):
    cat = Catalogue.load(tiny_settings.dataset_dir)
    assert parse_lifted("ok, horror is fine again", cat) == ["Horror"]
    assert parse_lifted("allow horror movies", cat) == ["Horror"]
    assert parse_lifted("no horror", cat) == []
    assert parse_lifted("you can include horror again, something scary", cat) == ["Horror"]
    assert parse_lifted("actually I do like horror now", cat) == ["Horror"]
    assert parse_lifted("I changed my mind about horror", cat) == ["Horror"]
    assert parse_lifted("I like comedy", cat) == []  # a wish, not a lifted ban
    assert parse_facts("something for my kids, I'm 41") == {"audience": "kids", "age_band": "35-44"}
    assert parse_facts("a comedy") == {}


def test_remember_node_keeps_constraints_across_threads_until_lifted(tiny_settings, tmp_path):
    services = build_services(tiny_settings, None)
    settings = Settings(home=tmp_path, _env_file=None)
    with open_store(settings) as store:
        graph = build_graph(store=store)
        first = graph.invoke(turn_input("u7", "no horror, watching with my kids", k=3),
                             context=services)  # fmt: skip
        assert first["stages"][-1]["stage"] == "remember"
        profile = load_profile(store, "u7")
        assert profile.avoid_categories == ["Horror"]
        assert profile.attributes == {"audience": "kids"}
        # a later one-off request (no thread) of the same user still has no horror
        later = graph.invoke(turn_input("u7", None, k=5), context=services)
        assert later["thread_constraints"].exclude_categories == ["Horror"]
        # a call without a message has nothing to remember: no lock, no read, no write
        assert later["stages"][-1]["note"] == "nothing to remember"
        assert later["items"] and all("Horror" not in i.categories for i in later["items"])
        lifted = graph.invoke(turn_input("u7", "horror is fine again", k=3), context=services)
        assert "Horror" not in lifted["thread_constraints"].exclude_categories
        assert load_profile(store, "u7").avoid_categories == []
        anon = graph.invoke(turn_input(None, "no comedy", k=3), context=services)
        assert anon["stages"][-1]["note"] == "anonymous: not stored"


def test_profile_likes_seed_recall_and_are_not_recommended(tiny_settings, tmp_path):
    services = build_services(tiny_settings, None)
    with open_store(Settings(home=tmp_path, _env_file=None)) as store:
        save_profile(store, UserProfile(user_id="stranger", liked=["1", "2"], disliked=["3"]))
        state = build_graph(store=store).invoke(turn_input("stranger", None, k=4),
                                                context=services)  # fmt: skip
    assert state["plan"].path == "cold" and "2 liked item(s)" in state["plan"].reason
    assert {"i2i", "collaborative"} <= set(state["plan"].channels)
    ids = {i.item_id for i in state["items"]}
    assert ids and not ids & {"1", "2", "3"}


def test_forget_user_deletes_profile_and_only_their_threads(tiny_settings):
    with Recommender(tiny_settings, use_llm=False) as rec:
        rec.run("u5", "no horror", 3, thread_id="t-u5-a")
        rec.run("u5", "a comedy", 3, thread_id="t-u5-b")
        rec.run("u6", "no comedy", 3, thread_id="t-u6")
    gone = forget_user(tiny_settings, "u5")
    # (the session's tiny home may hold other u5 threads from other tests)
    assert gone.profile_items == 1 and {"t-u5-a", "t-u5-b"} <= set(gone.threads)
    assert "t-u6" not in gone.threads
    db = sqlite3.connect(tiny_settings.home / "checkpoints.sqlite")
    threads = {r[0] for r in db.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    writes = {r[0] for r in db.execute("SELECT DISTINCT thread_id FROM writes")}
    assert "t-u6" in threads and not {"t-u5-a", "t-u5-b"} & (threads | writes)
    store = sqlite3.connect(tiny_settings.home / "profiles.sqlite")
    assert not store.execute("SELECT * FROM store WHERE prefix LIKE 'users.u5%'").fetchall()
    assert store.execute("SELECT count(*) FROM store WHERE prefix = 'users.u6'").fetchone()[0]
    assert forget_user(tiny_settings, "u5").threads == []


def test_feedback_and_profile_cli(tiny_settings):
    runner = CliRunner()
    home = ["--home", str(tiny_settings.home), "--dataset", "tiny"]
    out = runner.invoke(app, [*home, "feedback", "--user", "fb", "--item", "9", "--like"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, [*home, "feedback", "--user", "fb", "--item", "5", "--dislike"])
    assert out.exit_code == 0, out.output
    bad = runner.invoke(app, [*home, "feedback", "--user", "fb", "--item", "999", "--like"])
    assert bad.exit_code == 2 and "error: unknown item '999'" in bad.output
    assert "Traceback" not in bad.output
    shown = runner.invoke(app, [*home, "profile", "show", "fb", "--json"])
    profile = json.loads(shown.output)
    assert profile["liked"] == ["9"] and profile["disliked"] == ["5"]
    table = runner.invoke(app, [*home, "profile", "show", "fb"])
    assert "Groundhog Day" in table.output
    forgot = runner.invoke(app, [*home, "profile", "forget", "fb"])
    assert "deleted 1 profile item(s), 0 chat thread(s)" in forgot.output
    again = runner.invoke(app, [*home, "profile", "forget", "fb"])
    assert "nothing stored for user fb" in again.output


INTENT = {"query": "films for kids", "include_categories": [], "exclude_categories": [],
          "year_min": 0, "year_max": 0, "liked_titles": ["Toy Story"]}  # fmt: skip
PLAN = {"channels": ["semantic", "popularity"], "per_channel": 50}


def test_sample_generation_seeds_collaborative_recall_with_valid_items_only(tiny_settings):
    proposals = {"titles": ["The Lion King (1994)", "Scream", "Toy Story", "Frozen (2013)"]}
    llm = fake_llm(json.dumps(INTENT), json.dumps(PLAN), json.dumps(proposals))
    pipeline = tiny_settings.model_copy(update={"controller": "pipeline"})  # LLM understand
    services = build_services(pipeline, llm)
    state = build_graph().invoke(
        turn_input(None, "I loved Toy Story, something for my kids, no horror", k=3,
                   fine_mode="off", sample_generation=True),
        context=services,
    )  # fmt: skip
    assert state["plan"].path == "cold" and state["plan"].sample_generation
    assert "sample generation" in state["plan"].reason
    assert state["pseudo_items"] == ["3"]  # Scream: horror; Toy Story: named; Frozen: absent
    gen = next(s for s in state["stages"] if s["stage"] == "generate")
    assert "Frozen (2013)" in gen["note"] and "breaks the constraints" in gen["note"]
    assert "collaborative" in state["plan"].channels
    assert any("collaborative" in c["sources"] for c in state["candidates"])
    assert [c.purpose for c in llm.calls] == ["understand", "plan", "generate"]


def test_sample_generation_switch_and_llm_failure(tiny_settings):
    llm = fake_llm(json.dumps(INTENT), json.dumps(PLAN))
    services = build_services(tiny_settings, llm)
    assert not tiny_settings.sample_generation  # off by default: the request's None follows it
    off = build_graph().invoke(
        turn_input(None, "something for my kids", k=3, fine_mode="off"), context=services
    )
    assert not off["plan"].sample_generation and "generate" not in [
        s["stage"] for s in off["stages"]
    ]
    broken = fake_llm(json.dumps(INTENT), json.dumps(PLAN), "not json")
    on = tiny_settings.model_copy(update={"sample_generation": True})  # on by setting
    state = build_graph().invoke(
        turn_input(None, "something for my kids", k=3, fine_mode="off"),
        context=build_services(on, broken),
    )
    assert state["items"] and state["pseudo_items"] == []
    assert any(f.startswith("generate: LLM failed") for f in state["fallbacks"])


def test_summarize_writes_the_llm_summary_into_the_profile(tiny_settings):
    from recpilot.agent.profile_ops import summarize_user

    cat = Catalogue.load(tiny_settings.dataset_dir)
    llm = fake_llm(json.dumps({"summary": "Loves family animation and light comedy."}))
    profile = summarize_user(tiny_settings, cat, llm, "u1")
    assert profile.summary == "Loves family animation and light comedy."
    assert llm.calls[0].purpose == "summarize"
    assert "Toy Story" in llm.calls[0].messages[0]["content"]  # u1's history is in the prompt
    with pytest.raises(ValueError, match="nothing known"):
        summarize_user(tiny_settings, cat, fake_llm(), "nobody")


@pytest.mark.parametrize("bad", ["*", " eve ", "", "[a]", "x" * 65, "a\nb"])
def test_invalid_user_ids_are_refused_before_touching_the_store(tiny_settings, bad):
    with pytest.raises(ValueError, match="invalid user id"):
        forget_user(tiny_settings, bad)
    with Recommender(tiny_settings, use_llm=False) as rec, pytest.raises(ValueError):
        rec.run(bad, None, 3)


def test_forget_star_is_refused_and_other_profiles_stay(tmp_path):
    settings = Settings(home=tmp_path, _env_file=None)
    with open_store(settings) as store:
        save_profile(store, UserProfile(user_id="keep.me", liked=["1"]))
    runner = CliRunner()
    out = runner.invoke(app, ["--home", str(tmp_path), "profile", "forget", "*"])
    assert out.exit_code == 2 and "invalid user id" in out.output
    with open_store(settings) as store:
        assert load_profile(store, "keep.me").liked == ["1"]


def test_a_corrupt_store_is_one_error_line_and_nothing_is_deleted(tmp_path):
    (tmp_path / "profiles.sqlite").write_bytes(b"not a database" * 100)
    runner = CliRunner()
    out = runner.invoke(app, ["--home", str(tmp_path), "profile", "show", "u1"])
    assert out.exit_code == 1
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: profile store")
