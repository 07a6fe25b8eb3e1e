"""Vision families (planned; see the open issues)."""
