"""Stage 3, a ticket at a time to an answer: the ticket's validation, facts, verdicts, deadlines, message rendering, and the three questions (decide, check, apply)."""
