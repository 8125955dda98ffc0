"""File formats and safe writes: every output goes through here."""
