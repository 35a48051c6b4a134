"""Training data: readers for the procedural corpus and the real data sets (BEAT, ZEGGS, BEAT2) into one
format (`format.Sample`), and the on-disk feature cache (`features`)."""
