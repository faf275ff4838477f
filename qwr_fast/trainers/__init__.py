"""Trainers: each owns one loop (collect, update critic, update actor, evaluate, log, checkpoint)."""
