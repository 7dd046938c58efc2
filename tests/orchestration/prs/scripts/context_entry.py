"""Test entry script taking a mini_batch_context; returns `<minibatch_index>:<file>` rows."""


def run(mini_batch, mini_batch_context):
    return [f"{mini_batch_context.minibatch_index}:{p.rsplit('/', 1)[1]}" for p in mini_batch]
