"""The procedural speech-gesture corpus: speech, sentences, motion, shards."""
