"""Reading comprehension by UniLM seq2seq: several passages per question, no-answer detection, voting.

Read in this order: data.py, metric.py, train.py, infer.py, __main__.py (see README.md).
"""
