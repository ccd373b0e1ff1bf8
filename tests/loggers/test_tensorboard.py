import jax.numpy as jnp
import numpy as np
from tensorboardX.proto.event_pb2 import SessionLog
from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

from memrl_eqx.loggers import TensorBoardLogger

from ..helpers import read_events


def _events(logdir):
    return [
        e
        for path in sorted(logdir.glob("events.out.tfevents.*"))
        for e in read_events(path)
    ]


def _values(logdir):
    """(tag, step, value) of every summary value of the run."""
    return [(v.tag, e.step, v) for e in _events(logdir) for v in e.summary.value]


def test_scalars_skip_nan_and_samples_give_a_mean_and_a_histogram(tmp_path):
    with TensorBoardLogger(tmp_path) as logger:
        logger.log({"return": jnp.float32(jnp.nan), "loss": 0.25}, 100)
        logger.log({"return": 0.5, "loss": np.inf}, 200)
        logger.log({"eval/return": jnp.array([1.0, 2.0, 6.0, jnp.nan])}, 300)
    scalars = [
        (t, s, v.simple_value)
        for t, s, v in _values(tmp_path)
        if not v.HasField("histo")
    ]
    assert scalars == [
        ("loss", 100, 0.25),
        ("return", 200, 0.5),
        ("eval/return", 300, 3.0),
    ]
    ((tag, step, value),) = [
        (t, s, v) for t, s, v in _values(tmp_path) if v.HasField("histo")
    ]
    assert (tag, step) == ("eval/return/histogram", 300)
    assert (value.histo.num, value.histo.min, value.histo.max) == (3, 1.0, 6.0)
    assert value.histo.sum == 9.0


def test_log_hparams_writes_the_hparams_plugin_records_into_the_run(tmp_path):
    with TensorBoardLogger(tmp_path) as logger:
        logger.log({"return": 0.5}, 640)
        logger.log_hparams(
            {
                "lr": 3e-4,
                "torso": "gru",
                "recurrent": True,
                "envs": 32,
                "sizes": (8, 8),
            },
            {"eval/return": jnp.float32(0.75)},
        )
    values = _values(tmp_path)
    plugin = {
        t: HParamsPluginData.FromString(v.metadata.plugin_data.content)
        for t, _, v in values
        if v.metadata.plugin_data.plugin_name == "hparams"
    }
    assert set(plugin) == {
        "_hparams_/experiment",
        "_hparams_/session_start_info",
        "_hparams_/session_end_info",
    }
    hparams = plugin["_hparams_/session_start_info"].session_start_info.hparams
    assert hparams["lr"].number_value == 3e-4
    assert hparams["torso"].string_value == "gru"
    assert hparams["recurrent"].bool_value is True
    assert hparams["envs"].number_value == 32
    assert hparams["sizes"].string_value == "(8, 8)"
    experiment = plugin["_hparams_/experiment"].experiment
    assert [m.name.tag for m in experiment.metric_infos] == ["eval/return"]
    assert ("eval/return", 640) in [(t, s) for t, s, _ in values]


def test_resume_purges_the_events_after_the_checkpoint(tmp_path):
    with TensorBoardLogger(tmp_path) as logger:
        for step in (100, 200, 300):
            logger.log({"x": float(step)}, step)
    with TensorBoardLogger(tmp_path, resume_step=200) as logger:
        logger.log({"x": -3.0}, 300)
    (purge,) = [e for e in _events(tmp_path) if e.HasField("session_log")]
    assert purge.session_log.status == SessionLog.START and purge.step == 201
    # (the two runs' files do not overwrite each other, even within one second)
    assert [(s, v.simple_value) for _, s, v in _values(tmp_path)] == [
        (100, 100.0),
        (200, 200.0),
        (300, 300.0),
        (300, -3.0),
    ]
