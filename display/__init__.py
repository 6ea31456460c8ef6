"""LED strips, hall screens, TV page and voice announcements (roadmap item 3)."""
