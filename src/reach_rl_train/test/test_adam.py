"""The written-out Adam against torch.optim.Adam, the reference it replaces."""
import pytest

torch = pytest.importorskip("torch")

from reach_rl_train.adam import Adam  # noqa: E402


def _model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ELU(), torch.nn.Linear(16, 3))


def _loss(model, step):
    gen = torch.Generator().manual_seed(step)
    x = torch.randn(32, 5, generator=gen)
    return (model(x) - torch.randn(32, 3, generator=gen)).square().mean()


def _train(model, optimizer, steps, lr_at=None):
    for step in range(steps):
        if lr_at is not None:
            lr_at(step)
        optimizer.zero_grad()
        _loss(model, step).backward()
        optimizer.step()


def test_steps_like_torch_adam_with_a_changing_learning_rate():
    ours, reference = _model(0), _model(0)
    adam = Adam(ours.parameters(), lr=1e-2)
    torch_adam = torch.optim.Adam(reference.parameters(), lr=1e-2)

    def set_ours(step):
        adam.lr.fill_(1e-2 / (1 + step))

    def set_reference(step):
        torch_adam.param_groups[0]["lr"] = 1e-2 / (1 + step)

    _train(ours, adam, 50, set_ours)
    _train(reference, torch_adam, 50, set_reference)
    for p, q in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert not torch.equal(ours[0].weight, _model(0)[0].weight)  # it did move


def test_resumes_from_its_own_state_or_torch_adams():
    for make in (lambda m: Adam(m.parameters(), lr=3e-3),
                 lambda m: torch.optim.Adam(m.parameters(), lr=3e-3)):
        trained = _model(1)
        first = make(trained)
        _train(trained, first, 20)
        resumed_model = _model(2)
        resumed_model.load_state_dict(trained.state_dict())
        resumed = Adam(resumed_model.parameters(), lr=1.0)
        resumed.load_state_dict(first.state_dict())
        assert float(resumed.lr) == pytest.approx(3e-3)
        assert float(resumed.step_count) == 20
        # the resumed optimiser's next step is the one the first would have taken
        for model, optimizer in ((trained, first), (resumed_model, resumed)):
            optimizer.zero_grad()
            _loss(model, 20).backward()
            optimizer.step()
        for p, q in zip(trained.parameters(), resumed_model.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)


def test_refuses_a_state_of_another_model():
    small = Adam(_model(0).parameters(), lr=1e-3)
    other = torch.nn.Linear(5, 3)
    with pytest.raises(ValueError, match="2 parameters, the model has 4"):
        small.load_state_dict(Adam(other.parameters(), lr=1e-3).state_dict())
