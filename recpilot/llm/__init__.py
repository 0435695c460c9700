"""The LLM layer: one OpenAI-protocol client, the embedded llama.cpp server and its build."""
