"""The sampled protocol reads the whole pool's order without building every reply item."""

from __future__ import annotations

from recpilot.config.settings import Settings
from recpilot.evals.exact_index import ExactIndex
from recpilot.evals.harness import EvalConfig, PipelineRuns, Progress, Runner, load_world
from recpilot.evals.pipelines import Pipeline, run_graph, with_budgets
from recpilot.funnel.scorers.als import CollaborativeModel


def test_sampled_order_is_the_one_respond_gives_for_the_whole_pool(
    tiny_settings: Settings,
) -> None:
    config = EvalConfig(dataset="tiny", ks=[2, 3], negatives=8, min_user=3, min_item=1, llm=False)
    world = load_world(tiny_settings.model_copy(update={"planner": "rules"}), config, Progress())
    assert isinstance(world.index, ExactIndex)
    train = world.split.train_frame("test")
    cat = world.catalogue(train)
    model = CollaborativeModel.train(train, cat.index_of, len(cat), factors=8, iterations=5)
    svc = world.services(cat, model, None)
    pop = {str(i): float(c) for i, c in zip(cat.ids, cat.popularity, strict=True)}
    runner = Runner(world, {"als": svc}, config, pop)
    targets = world.split.targets("test")
    pipelines = [
        Pipeline(name="recall+coarse", model="als"),
        Pipeline(name="popularity", model="als", channels=["popularity"], cut="recall"),
        Pipeline(name="i2i", model="als", channels=["i2i"], cut="recall"),
    ]
    compared = 0
    for p in pipelines:
        for user in world.split.users:
            for method in ("uniform", "popularity"):
                runs = PipelineRuns()
                runs.add(user, targets[user], *runner.sampled(p, user, targets[user], method))
                n, hidden = runner._pool(user, targets[user], method)
                base = with_budgets(
                    svc, recall_per_channel=max(n, svc.settings.recall_per_channel), coarse_keep=n
                )
                whole = run_graph(runner.graph, base, user, p, n, hidden).ranked  # n reply items
                assert runs.lists[0] == whole
                compared += len(whole) > runner.k  # the reply was cut to k, the order was not
    assert compared >= len(world.split.users)
    # i2i asked for neighbour lists, which the run's index remembers
    assert world.index._neighbours
