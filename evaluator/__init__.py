"""Rating pads, cases (办件), 差评 follow-up and upstream sync (roadmap item 4)."""
