"""Configuration: settings (pydantic-settings) and data paths. Imports nothing from recpilot."""
