"""The user simulator never names its target: leakage guard and template simulator."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recpilot.data.catalogue import Catalogue
from recpilot.data.movielens import fetch_movielens_100k
from recpilot.evals.chat.episodes import make_target
from recpilot.evals.chat.leakage import LeakageGuard, clean_title, distinctive_words
from recpilot.evals.chat.simulator import (
    Observation,
    Shown,
    Target,
    TargetItem,
    TemplateSimulator,
    text_phrases,
)
from recpilot.evals.split import leave_one_out, sample_users

# function words of four letters or more; every other title word of 4+ letters, and every
# number, is "distinctive" for this independent check (the guard also bans 3-letter words)
COMMON = {"with", "from", "that", "this", "what", "when", "where", "your", "they", "them",
          "their", "into", "over", "under", "than", "then", "there", "here", "which"}  # fmt: skip


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory: pytest.TempPathFactory, ml100k_dir: Path) -> Catalogue:
    """ML-100K with the Wikipedia item text joined in (where the shared copy has it)."""
    dest = tmp_path_factory.mktemp("ml100k-sim") / "ds"
    fetch_movielens_100k(dest, from_path=ml100k_dir)
    catalogue = Catalogue.load(dest)
    text_file = ml100k_dir.parent / "ml-100k-text" / "item_text.csv"
    if text_file.is_file():
        with text_file.open(encoding="utf-8") as fh:
            texts = {row["item_id"]: row["text"] for row in csv.DictReader(fh)}
        items = catalogue.items.copy()
        items["text"] = [texts.get(str(i), "") for i in items["item_id"]]
        catalogue = Catalogue(items, catalogue.interactions)
    return catalogue


def independent_words(title: str) -> set[str]:
    """A second, simpler reading of "a distinctive word of the title" for the check."""
    title = re.sub(r"\(\d{4}\)\s*$", "", title).lower()
    out = set()
    for w in re.findall(r"[a-z0-9]+", title):
        if w.isdigit() or (len(w) >= 4 and w not in COMMON):
            out.add(w)
    return out


def assert_clean(message: str, title: str) -> None:
    said = set(re.findall(r"[a-z0-9]+", message.lower()))
    hits = independent_words(title) & said
    assert not hits, f"{message!r} names a word of {title!r}: {hits}"
    assert clean_title(title).lower() not in message.lower()
    assert LeakageGuard(title).clean(message), (message, title)


def test_guard_catches_titles_words_and_near_matches() -> None:
    guard = LeakageGuard("Godfather, The")
    assert clean_title("Godfather, The (1972)") == "The Godfather"
    assert guard.leak("I loved The Godfather!") == "title word 'godfather'"
    assert guard.leak("something like Godfather's sequel") is not None
    assert guard.clean("A mafia drama from the 1970s.")
    assert distinctive_words("Star Wars (1977)") == {"star", "wars"}
    assert "schindler" in distinctive_words("Schindler's List")
    assert "2" in distinctive_words("Toy Story 2")
    assert LeakageGuard("Toy Story").leak("maybe toystory?").startswith("fuzzy title match")
    assert LeakageGuard("Amélie").leak("I liked Amelie") == "title word 'amelie'"


def fake_seen(catalogue: Catalogue, rng: np.random.Generator, target: str) -> Observation:
    """Ten random items (never the target), sometimes with a question in the reply."""
    picks = [str(i) for i in rng.choice(catalogue.ids, 11, replace=False) if str(i) != target]
    items = [
        Shown(item_id=i, title=catalogue.get(i).title, year=catalogue.get(i).year,
              categories=catalogue.get(i).categories)
        for i in picks[:10]
    ]  # fmt: skip
    reply = "Here are 10 picks: " + "; ".join(i.title for i in items) + "."
    question = rng.choice(["", " What genre do you want?", " From which era?", " Anything else?"])
    return Observation(reply=reply + str(question), items=items)


def test_no_simulator_message_names_the_target_over_many_targets_and_seeds(
    ml100k: Catalogue,
) -> None:
    split = leave_one_out(ml100k.interactions)
    train = split.train_frame("test")
    targets = split.targets("test")
    users = sample_users(split.users, 150, seed=11)
    rng = np.random.default_rng(5)
    kinds: set[str] = set()
    messages = 0
    for user in users:
        target = make_target(ml100k, train, user, targets[user])
        for seed in (0, 1, 2):
            sim = TemplateSimulator(target, seed)
            msg = sim.first()
            assert_clean(msg.text, target.item.title)
            for _ in range(7):
                msg = sim.next(fake_seen(ml100k, rng, target.item.item_id))
                assert_clean(msg.text, target.item.title)
                kinds.add(msg.kind)
                messages += 1
    assert messages == 150 * 3 * 7
    assert {"category", "era", "history", "reject"} <= kinds
    if ml100k.items["text"].str.len().gt(0).any():
        assert "text" in kinds  # the item-text hint ran (ML-100K + Wikipedia text)


def test_hints_that_would_leak_are_dropped_not_said() -> None:
    # the title shares words with a category and with the co-occurring history item
    target = Target(
        user_id="u1",
        item=TargetItem("9", "Horror Hotel", 1960, ("Horror", "Mystery"),
                        "Horror Hotel is a 1960 British film directed by John Moxey."),
        cooccurring=("The Hotel New Hampshire (1984)", "Psycho (1960)"),
    )  # fmt: skip
    sim = TemplateSimulator(target, seed=0)
    said = [sim.first().text]
    seen = Observation(reply="Here are picks.", items=[Shown(item_id="1", title="X")])
    said += [sim.next(seen).text for _ in range(8)]
    assert all(LeakageGuard("Horror Hotel").clean(m) for m in said)
    assert not any("horror" in m.lower() or "hotel" in m.lower() for m in said)
    assert any("Psycho" in m for m in said)  # the next co-occurring item is used instead
    assert any("Moxey" in m for m in said)


def test_same_seed_same_conversation_other_seed_other_order() -> None:
    target = Target(
        user_id="7",
        item=TargetItem("3", "Casablanca", 1942, ("Drama", "Romance", "War"),
                        "Casablanca is a 1942 American film directed by Michael Curtiz, "
                        "starring Humphrey Bogart."),
        cooccurring=("Notorious (1946)",),
    )  # fmt: skip
    seen = Observation(
        reply="Here are picks.",
        items=[Shown(item_id=str(i), title=f"T{i}", categories=["Comedy"]) for i in range(10)],
    )

    def talk(seed: int) -> list[str]:
        sim = TemplateSimulator(target, seed)
        return [sim.first().text] + [sim.next(seen).text for _ in range(6)]

    assert talk(3) == talk(3)
    assert len({tuple(talk(s)) for s in range(6)}) > 1
    joined = " ".join(talk(0))
    assert "no comedy" in joined or "nothing comedy" in joined  # rejection of what was shown


def test_text_phrases_read_director_stars_and_source() -> None:
    text = (
        "Fargo is a 1996 American black comedy crime film directed by Joel Coen, "
        "starring Frances McDormand, based on a true story."
    )
    got = text_phrases(text)
    assert "I think it was directed by Joel Coen." in got
    assert "Frances McDormand is in it, I believe." in got
    assert "It's a American film." in got


def test_the_simulator_answers_a_genre_question_with_a_category() -> None:
    target = Target("1", TargetItem("5", "Heat", 1995, ("Action", "Crime", "Thriller")))
    sim = TemplateSimulator(target, 0)
    opening = sim.first()
    reply = Observation(reply="What kind of film are you after?", items=[])
    answer = sim.next(reply)
    assert answer.kind == "answer"
    assert answer.stated.include and answer.stated.include[0] in target.item.categories
    assert opening.stated.include or opening.stated.decade == 1990


def test_cooccurring_history_orders_by_shared_users() -> None:
    train = pd.DataFrame(
        {"user_id": ["u", "u", "u", "a", "a", "b", "b", "c"],
         "item_id": ["1", "2", "3", "9", "2", "9", "2", "9"]}
    )  # fmt: skip
    from recpilot.evals.chat.episodes import cooccurring_history

    assert cooccurring_history(train, "u", "9") == ["2"]


class FakeCompletions:
    """An OpenAI-client stand-in that answers from a script (and records the requests)."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.requests: list[dict] = []

    def create(self, **kw: object) -> object:
        from types import SimpleNamespace as NS

        self.requests.append(kw)
        text = self.replies.pop(0) if self.replies else "The Godfather, obviously."
        return NS(choices=[NS(message=NS(content=text))],
                  usage=NS(prompt_tokens=50, completion_tokens=8))  # fmt: skip


def llm_sim(replies: list[str]) -> tuple[object, FakeCompletions]:
    from types import SimpleNamespace as NS

    from recpilot.evals.chat.simulator import LLMSimulator, SimulatorLLMSettings

    target = Target("5", TargetItem("127", "Godfather, The", 1972, ("Action", "Crime", "Drama"),
                                    "The Godfather is a 1972 American crime film directed by "
                                    "Francis Ford Coppola."))  # fmt: skip
    fake = FakeCompletions(replies)
    client = NS(chat=NS(completions=fake))
    return LLMSimulator(target, client, SimulatorLLMSettings(_env_file=None), seed=0), fake


def test_llm_simulator_regenerates_leaking_replies_and_never_sees_the_title() -> None:
    sim, fake = llm_sim(["I want The Godfather.", "A mafia crime drama from the seventies."])
    msg = sim.first()  # type: ignore[attr-defined]
    assert msg.text == "A mafia crime drama from the seventies."
    assert msg.dropped == 1 and msg.sim_calls == 2 and msg.sim_prompt_tokens == 100
    prompt = fake.requests[0]["messages"][0]["content"]
    assert "godfather" not in prompt.lower() and "Coppola" in prompt  # title masked in the text


def test_llm_simulator_falls_back_to_the_template_when_every_reply_leaks() -> None:
    sim, _ = llm_sim(["Godfather!", "godfather?", "The Godfather"])
    msg = sim.first()  # type: ignore[attr-defined]
    assert msg.dropped >= 3 and msg.sim_calls == 3
    assert LeakageGuard("Godfather, The").clean(msg.text) and msg.kind == "open"


def test_a_title_with_a_question_mark_is_not_a_question() -> None:
    from recpilot.evals.chat.simulator import asks_question

    items = [Shown(item_id="1", title="Shall We Dance?"), Shown(item_id="2", title="Heat")]
    assert not asks_question(Observation(reply="Here are 2 picks: Shall We Dance?; Heat.",
                                         items=items))  # fmt: skip
    assert asks_question(Observation(reply="Which era do you like?", items=items))
