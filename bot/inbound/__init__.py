"""The path of one message: webhook (edge checks), parse (wire -> Inbound), intake (one KV script),
dedupe (the retry guard), pipeline (deadline, late replies), render (Reply -> wire)."""
