import torch
from opacus.validators import ModuleValidator

from synthwear.default_plugins.transformer import DailyTransformer, TransformerConfig
from synthwear.interfaces import GeneratorSpec

SPEC = GeneratorSpec(vocab_sizes=(100, 100, 100), max_days=21)


def model() -> DailyTransformer:
    torch.manual_seed(0)
    return DailyTransformer(SPEC, TransformerConfig()).eval()


def test_paper_shape():
    m = model()
    assert len(m.blocks) == 3 and m.blocks[0].attn.n_head == 4 and m.position_embedding.embedding_dim == 64
    logits = m(torch.randint(0, 100, (2, 21, 3)))
    assert [tuple(l.shape) for l in logits] == [(2, 21, 100)] * 3


def test_changing_day_t_plus_1_never_changes_predictions_up_to_t():
    m = model()
    tokens = torch.randint(0, 100, (4, 21, 3))
    before = m(tokens)
    for t in (0, 7, 19):
        changed = tokens.clone()
        changed[:, t + 1:] = torch.randint(0, 102, changed[:, t + 1:].shape)
        after = m(changed)
        for a, b in zip(before, after):
            torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1])
            assert not torch.allclose(a[:, t + 1:], b[:, t + 1:])


def test_opacus_can_compute_per_sample_gradients():
    assert ModuleValidator.validate(model().train(), strict=True) == []


def test_input_dropout_hides_values_in_training_only():
    torch.manual_seed(0)
    m = DailyTransformer(SPEC, TransformerConfig(dropout=0.0, input_dropout=1.0))
    tokens = torch.randint(0, 100, (3, 21, 3))
    tokens[:, 0] = 101  # start tokens are never hidden
    all_missing = torch.full_like(tokens, 100)
    all_missing[:, 0] = 101
    m.train()
    for a, b in zip(m(tokens), m(all_missing)):
        torch.testing.assert_close(a, b)
    m.eval()
    assert not torch.allclose(m(tokens)[0], m(all_missing)[0])
