"""The chaos soak (chaos_soak.py) and its parts."""
