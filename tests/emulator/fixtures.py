"""pytest fixtures for the KMS emulator (filled in by the emulator work)."""
