"""``recpilot eval-agent``: the chat controller scored on a labelled conversation set."""
