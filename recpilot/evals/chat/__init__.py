"""Conversational evaluation (``recpilot eval-chat``): a user simulator talks to the agent.

A simulated user knows one *target* item — a held-out user's leave-one-out test item —
and asks the agent for it over up to ``T`` turns without ever naming it; an episode
stops at the first turn whose list shows the target. Protocol after iEvaLM (Wang et
al., "Rethinking the Evaluation for Conversational Recommendation in the Era of Large
Language Models", EMNLP 2023: the seeker knows the target, must not name it, ≤ 5
turns, Recall@K) and InteRecAgent's simulator (Huang et al. 2023, arXiv:2308.16505:
hit ratio and AT, the average turns to a hit with a miss counted as T + 1), with the
leakage guard that arXiv:2403.16416 (Zhu et al., "How Reliable is Your Simulator?")
shows is needed: a simulator that leaks the target's title inflates every score.

Modules: :mod:`.leakage` (the title guard), :mod:`.simulator` (template and LLM
simulators, seeing only what a user sees), :mod:`.episodes` (targets, the split-trained
agent, the episode loop, the resumable cache), :mod:`.metrics` (hit@K, AT, CIs, paired
comparisons), :mod:`.report` (markdown, JSON, plot). Nothing in the agent imports
this package.
"""
