"""Core structures: k-mers, bit-packed arrays, the MPHF, unitigs and membership evidence."""
