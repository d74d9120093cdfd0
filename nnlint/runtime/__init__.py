"""Runtime mechanics shared by graph building, the probe and the CLI: putting user state back
(state), running a model on meta or real tensors (execution), deadlines (timeout), random
generators (randomness), following module calls during a forward (module_calls), the
torch._dynamo import workaround for meta runs (lazy_dynamo), and the one module that touches
torch's private API (torch_compat)."""
