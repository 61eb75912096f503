"""pytest fixtures for the plugin host harness (filled in by the plugin-face work)."""
