"""Clerk terminal page, caller keypads, counter state and supervision (roadmap item 2)."""
