"""Speech recognition: a voice note's 16 kHz samples in, its text and language out."""
