"""Music families (planned; see the open issues)."""
