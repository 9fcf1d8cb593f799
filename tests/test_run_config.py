"""Run configs (``flare train RUN.toml``): every mistake is one error naming its key,
raised before anything starts; the example configs build the runs they describe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from flare.learner.build import build_manager, build_run
from flare.learner.config import ConfigError, load_config, parse_config
from flare.learner.environments import open_env_source

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"

MINIMAL = """
name = "tiny"
[env]
factory = "flare.testing:ChainEnv"
kwargs = { max_steps = 5 }
[agents]
count = 2
games = 3
[cts.RL.model]
type = "SimpleModelAC"
perception = { mlp = [8] }
[cts.RL.algorithm]
type = "SimpleAC"
optim = { type = "RMSprop", lr = 1e-3 }
[cts.RL.helper]
type = "OnlineHelper"
sample_interval = 2
"""


def _with(replace: str, by: str) -> str:
    assert replace in MINIMAL
    return MINIMAL.replace(replace, by)


def _build(text: str):
    config = parse_config(text)
    with open_env_source(config.env, config.seed, ROOT) as source:
        return build_manager(config, source)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("colour = 1\n" + MINIMAL, "colour: unknown key; the top level takes"),
        (_with("count = 2", "cuont = 2"), "agents.cuont: unknown key"),
        (_with("count = 2", 'count = "two"'), "agents.count must be an integer"),
        (_with("count = 2", "count = 0"), "agents.count must be >= 1"),
        (_with("games = 3", "games = 3.5"), "agents.games must be an integer"),
        (_with("count = 2", "count = true"), "agents.count must be a number, got a boolean"),
        (_with("[agents]\ncount = 2\ngames = 3\n", ""), "agents: required"),
        (
            _with("kwargs = { max_steps = 5 }", 'kwargs = {}\naddress = "127.0.0.1:1"'),
            "env: give exactly one of",
        ),
        (_with("[cts.RL.helper]", "[cts.RL.help]"), "cts.RL.helper: required"),
        (MINIMAL + "[stop]\nsuccess_rate = 1.5\n", "stop.success_rate must be in [0, 1]"),
        (MINIMAL + "[log]\nprogress = 'fancy'\n", "log.progress must be one of"),
        (MINIMAL + "[learner]\ntls_cert = 'a.pem'\n", "learner.tls_cert and learner.tls_key"),
        (
            _with("games = 3", 'games = 3\nkind = "robot"'),
            "agents.kind must be one of simple, memory, reward_prediction",
        ),
        ("[env\n", "not valid TOML"),
        (MINIMAL + "[act]\nstreams = -1\n", "act.streams must be >= 0"),
        (MINIMAL + "[act]\ngames = 5\n", "act.games: the run accepts no Act streams"),
        (MINIMAL + "[act]\nstreams = 1\nopen_wait_s = 0\n", "act.open_wait_s must be > 0"),
        (MINIMAL + "[act]\nstreams = 1\nport = 3\n", "act.port: unknown key"),
        (
            MINIMAL + "[act]\nstreams = 1\n[learner]\nserve = false\n",
            "act.streams: Act streams come through the Learner service",
        ),
        (_with("count = 2\ngames = 3", "count = 1\ngames = 0"), "agents.games must be >= 1"),
        (
            _with('factory = "flare.testing:ChainEnv"', 'factory = "flare.testing"'),
            "env.factory must be MODULE:CALLABLE",
        ),
    ],
)
def test_a_bad_config_is_one_error_naming_the_key(text, names):
    with pytest.raises(ConfigError) as error:
        parse_config(text)
    assert names in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (
            _with('type = "SimpleModelAC"', 'type = "SimpleModelACC"'),
            "cts.RL.model.type: no model 'SimpleModelACC'; the zoo has",
        ),
        (
            _with("perception = { mlp = [8] }", "perception = { mlp = [8] }\nwidth = 3"),
            "cts.RL.model.width: SimpleModelAC takes no option 'width'; it takes sensor_name",
        ),
        (
            _with("perception = { mlp = [8] }", "perception = { mlp = [8] }\ndims = [3]"),
            "cts.RL.model.dims: set by the run",
        ),
        (
            _with("perception = { mlp = [8] }", "perception = { mlp = [0] }"),
            "cts.RL.model.perception.mlp must be a list of layer widths",
        ),
        (
            _with("perception = { mlp = [8] }", 'perception = { mlp = [8], activation = "sine" }'),
            "cts.RL.model.perception.activation must be one of",
        ),
        (
            _with("perception = { mlp = [8] }", 'perception = "RL2"'),
            "cts.RL.model.perception: no earlier CT 'RL2'",
        ),
        (
            _with('optim = { type = "RMSprop", lr = 1e-3 }', 'optim = { type = "Adamm" }'),
            "cts.RL.algorithm.optim.type: torch.optim has no optimizer 'Adamm'",
        ),
        (
            _with('optim = { type = "RMSprop", lr = 1e-3 }', 'optim = { type = "Adam", lr2 = 1 }'),
            "cts.RL.algorithm.optim.lr2: Adam takes no option 'lr2'",
        ),
        (
            _with('optim = { type = "RMSprop", lr = 1e-3 }', "discount = 0.9"),
            "cts.RL.algorithm.discount: SimpleAC takes no option 'discount'",
        ),
        (
            _with('type = "OnlineHelper"', 'type = "OnlineHelpr"'),
            "cts.RL.helper.type: no agent helper 'OnlineHelpr'",
        ),
        (_with("sample_interval = 2", "sample_interval = 0"), "sample_interval must be >= 1"),
        (
            _with("sample_interval = 2", "sample_intervall = 2"),
            "cts.RL.helper.sample_intervall: OnlineHelper takes no option",
        ),
        (
            _with('factory = "flare.testing:ChainEnv"', 'factory = "flare.testing:NoSuchEnv"'),
            "env.factory: module 'flare.testing' has no 'NoSuchEnv'",
        ),
    ],
)
def test_a_bad_zoo_option_is_one_error_naming_it(text, names):
    with pytest.raises(ConfigError) as error:
        _build(text)
    assert names in str(error.value)


def test_adapter_options_are_checked_by_the_adapter():
    text = _with(
        'factory = "flare.testing:ChainEnv"\nkwargs = { max_steps = 5 }',
        'adapter = "gym"\noptions = { game = "CartPole-v0", colour = 1 }',
    )
    with pytest.raises(ConfigError, match="env.options: unrecognized arguments: colour"):
        _build(text)
    text = _with(
        'factory = "flare.testing:ChainEnv"\nkwargs = { max_steps = 5 }',
        'adapter = "gym"\noptions = { game = "NoSuchGame-v9" }',
    )
    with pytest.raises(ConfigError, match="env.options: cannot build 'NoSuchGame-v9'"):
        _build(text)
    text = _with(
        'factory = "flare.testing:ChainEnv"\nkwargs = { max_steps = 5 }', 'adapter = "doom"'
    )
    with pytest.raises(ConfigError, match="env.adapter: no adapter 'doom'; the bundled ones"):
        _build(text)


def test_flare_train_refuses_a_bad_config_in_one_line_before_anything_starts(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(_with("count = 2", "count = -1"))
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "flare", "train", str(bad), "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "flare train: agents.count must be >= 1, got -1"
    assert not run_dir.exists()


@pytest.mark.parametrize(
    "name",
    [
        "cartpole_ac",
        "cartpole_ppo",
        "cartpole_act",
        "breakout_ac",
        "vizdoom_basic",
        "vizdoom_health_gathering",
        "babyai_gft",
        "miniworld_gft",
    ],
)
def test_the_example_configs_parse_and_build(name):
    config, _ = load_config(CONFIGS / f"{name}.toml")
    with open_env_source(config.env, config.seed, ROOT) as source:
        manager = build_manager(config, source)
    assert len(manager.agents) == config.agents.count + config.act.streams
    assert list(manager.cts) == list(config.cts)


def test_the_seed_cartpole_config_builds_the_seed_example():
    """examples/ac_example.py: 16 agents, 3 ReLU layers of 128, SimpleAC with RMSprop
    5e-5, OnlineHelper learning every 4 steps, rewards / 100."""
    config, _ = load_config(CONFIGS / "cartpole_ac.toml")
    with open_env_source(config.env, config.seed, ROOT) as source:
        manager = build_manager(config, source)
    alg = manager.cts["RL"].alg
    layers = [m for m in alg.model.perception_net]
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU"] * 3
    assert [m.out_features for m in layers if isinstance(m, torch.nn.Linear)] == [128] * 3
    assert isinstance(alg.optim, torch.optim.RMSprop)
    assert alg.optim.param_groups[0]["lr"] == 5e-5
    settings = manager.settings["RL"]
    assert settings.agent_helper.__name__ == "OnlineHelper"
    assert settings.helper_kwargs == {"sample_interval": 4}
    assert len(manager.agents) == 16 and all(a.num_games == 8000 for a in manager.agents)
    shaped = manager.agents[0].reward_shaping_f(torch.ones(1).numpy() * 50)
    assert shaped[0] == 0.5


def test_the_seed_breakout_config_builds_the_seed_example():
    """examples/img_ac_example.py: 16 agents on 4 stacked 84x84 gray frames, the seed's CNN
    (convolutions 32x8/4, 64x4/2, 64x3/1, then 512 units), SimpleAC with RMSprop 1e-4 and
    gradients clipped at 5, learning every 5 steps, rewards through sign."""
    config, _ = load_config(CONFIGS / "breakout_ac.toml")
    with open_env_source(config.env, config.seed, ROOT) as source:
        manager, spec = build_run(config, source)
    assert spec.observations[0].shape == (4, 84, 84) and spec.observations[0].dtype == np.uint8
    alg = manager.cts["RL"].alg
    convs = [m for m in alg.model.perception_net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (4, 32, (8, 8), (4, 4)),
        (32, 64, (4, 4), (2, 2)),
        (64, 64, (3, 3), (1, 1)),
    ]
    linear = [m for m in alg.model.perception_net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(7 * 7 * 64, 512)]
    assert isinstance(alg.optim, torch.optim.RMSprop) and alg.optim.param_groups[0]["lr"] == 1e-4
    assert alg.grad_clip == 5.0
    assert manager.settings["RL"].helper_kwargs == {"sample_interval": 5}
    # (on a CPU the CNN's updates run beside the agents' acting: benchmarks/atari.py)
    assert manager.settings["RL"].learn_beside_acting is True
    assert len(manager.agents) == 16
    assert manager.agents[0].reward_shaping_f(np.array([-3.0, 0.0, 2.0])).tolist() == [-1, 0, 1]


@pytest.mark.parametrize(
    ("perception", "message"),
    [
        ("{ cnn = [[8, 3, 1]], mlp = [4] }", r"cts.RL.model.perception.cnn reads \[channels"),
        ("{ mlp = [8], cnn2 = 1 }", "perception.cnn2: unknown key; it takes cnn, mlp, activation"),
    ],
)
def test_a_bad_perception_table_is_one_error_naming_the_key(perception, message):
    text = _with("perception = { mlp = [8] }", f"perception = {perception}")
    with pytest.raises(ConfigError, match=message):
        _build(text)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"cnn": [[8, 3]]}, r"p.cnn\[0\] must be \[out_channels, kernel, stride\]"),
        ({"cnn": [[8, 3, 0]]}, r"p.cnn\[0\] must be"),
        ({"cnn": []}, "p.cnn must be a list"),
        ({"cnn": [[8, 3, 1]], "mlp": [0]}, "p.mlp must be a list of layer widths"),
        ({"cnn": [[8, 8, 4]]}, r"p.cnn does not fit images of \[1, 6, 6\]"),
    ],
)
def test_a_bad_cnn_is_one_error_naming_the_key(table, message):
    from flare.learner.perception import perception_net

    with pytest.raises(ConfigError, match=message):
        perception_net(table, (1, 6, 6), "p")


def test_a_cnn_alone_gives_its_flattened_features():
    from flare.learner.perception import perception_net

    net = perception_net({"cnn": [[8, 3, 1]], "activation": "relu"}, (1, 6, 6), "p")
    assert net(torch.zeros(2, 1, 6, 6)).shape == (2, 8 * 4 * 4)  # (no MLP: the features)


SEVERAL_CTS = """
name = "catch-aux"
[env]
factory = "flare.testing.sparse_reward_envs:CatchEnv"
kwargs = { rows = 5, columns = 3 }
[agents]
count = 2
games = 4
kind = "reward_prediction"
[cts.RL]
batch_wait_s = 1.0
[cts.RL.model]
type = "SimpleModelAC"
perception = { mlp = [16], activation = "relu" }
[cts.RL.algorithm]
type = "SimpleAC"
optim = { type = "Adam", lr = 1e-3 }
[cts.RL.helper]
type = "OnlineHelper"
sample_interval = 4
[cts.reward_prediction]
batch_wait_s = 1.0
[cts.reward_prediction.model]
type = "RewardPredictionModel"
perception = "RL"                        # the RL task's body, shared
[cts.reward_prediction.algorithm]
type = "RewardPrediction"
optim = { type = "Adam", lr = 1e-3 }
[cts.reward_prediction.helper]
type = "RewardReplayHelper"
buffer_capacity = 20
num_experiences = 2
sample_interval = 4
warmup = 1
"""


def test_a_config_with_several_cts_shares_a_perception_net_and_trains_both():
    manager = _build(SEVERAL_CTS)
    rl, aux = (manager.cts[n].alg.model for n in ("RL", "reward_prediction"))
    assert aux.perception_net is rl.perception_net  # shared, not copied
    assert manager.cts["RL"].lock is manager.cts["reward_prediction"].lock
    manager.log_settings.print_interval_s = 0
    manager.start()
    assert len(manager.stats) == 8
    learned = {key for record in manager.stats for key in record.costs}
    assert {"RL/cost", "reward_prediction/cost"} <= learned


def test_a_config_with_act_streams_builds_external_agents_of_the_same_kind():
    text = _with("count = 2", "count = 0") + "[act]\nstreams = 3\ngames = 7\n"
    config = parse_config(text)
    with open_env_source(config.env, config.seed, ROOT) as source:
        manager, spec = build_run(config, source)
    assert manager.own_agents == []
    assert [a.id for a in manager.external.agents] == [0, 1, 2]
    assert manager.external.games == 7
    assert all(type(a).__name__ == "SimpleRLAgent" for a in manager.external.agents)
    assert spec.observation_dims() == {"sensor": (1,)}


def test_learning_beside_acting_is_a_cts_switch_refused_for_helpers_that_use_costs():
    beside = _with("[cts.RL.model]", "[cts.RL]\nlearn_beside_acting = true\n[cts.RL.model]")
    manager = _build(beside)
    assert manager.settings["RL"].learn_beside_acting
    assert not _build(MINIMAL).settings["RL"].learn_beside_acting
    replay = beside.replace(
        'type = "OnlineHelper"\nsample_interval = 2',
        'type = "ExpReplayHelper"\nbuffer_capacity = 100\nnum_experiences = 4',
    )
    with pytest.raises(ConfigError, match="cts.RL.learn_beside_acting: ExpReplayHelper acts on"):
        _build(replay)
    with pytest.raises(ConfigError, match="cts.RL.learn_beside_acting must be"):
        _build(beside.replace("learn_beside_acting = true", "learn_beside_acting = 1"))
