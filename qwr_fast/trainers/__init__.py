"""Trainers: each owns one loop (collect, update critic and actor, evaluate, log, save)."""
