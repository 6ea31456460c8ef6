"""Pre-recorded voice segments (WAV, 16 kHz mono 16-bit) for call announcements.

Made once by ``scripts/make_voice_segments.py`` with espeak-ng's Mandarin voice; a hall may
replace any file by a human recording of the same name (keep the format).
"""
