"""Fleet status: every host's health read in one round of parallel reads (``gather``), and
judged by pure rules (``health``) into one document that the outputters render."""
