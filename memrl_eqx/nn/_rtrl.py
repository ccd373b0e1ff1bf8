"""`RTRL`: exact online gradients for element-wise recurrences (real-time
recurrent learning), with no backpropagation through time."""

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, Bool, Float

from .._custom_types import Carry
from ._memoroid import Memoroid
from ._misc import check_sequence, reset_carry
from ._rnn import RNN
from ._sequence_model import AbstractSequenceModel


RTRLCarry = tuple[Carry, Float[Array, "leaves units entries"]]


def _to_real(carry: Carry) -> tuple[Array, ...]:
    """The carry's leaves as real arrays, a complex leaf as its (real, imag) pair."""
    out = []
    for leaf in jtu.tree_leaves(carry):
        if jnp.iscomplexobj(leaf):
            out += [jnp.real(leaf), jnp.imag(leaf)]
        else:
            out.append(leaf)
    return tuple(out)


def _from_real(reals: tuple[Array, ...], like: Carry) -> Carry:
    """Inverse of `_to_real`, with the structure and dtypes of `like`."""
    leaves, treedef = jtu.tree_flatten(like)
    it = iter(reals)
    new = []
    for leaf in leaves:
        if jnp.iscomplexobj(leaf):
            new.append(lax.complex(next(it), next(it)).astype(leaf.dtype))
        else:
            new.append(next(it))
    return jtu.tree_unflatten(treedef, new)


class RTRL(AbstractSequenceModel):
    """Real-time recurrent learning for a model whose recurrence is element-wise.

    Wraps `RNN(cell)` or `Memoroid(cell)`. Its outputs are the wrapped model's,
    but `jax.grad` of any loss on them is the exact RTRL gradient: the carry is
    treated as a constant (`stop_gradient`) at every step, even within one call,
    and the dependence of the carry on the recurrent parameters is carried
    forward instead, as *sensitivities*. So gradients are exact across calls
    (online learning, one step at a time), with no backpropagation through
    time and a cost per step that does not depend on how many steps came
    before.

    **Which cells.** A cell is RTRL-capable when its recurrence is element-wise:
    every carry leaf has shape `(units,)` (a complex leaf counts as two real
    ones), unit $i$'s next carry depends only on unit $i$'s previous carry, the
    input and parameters, and each entry of a recurrent parameter affects one
    unit only. The cell declares this with the class variable
    `rtrl_parameters: ClassVar[dict[str, int]]`, mapping the name of every
    parameter used by the recurrence to the axis that indexes its unit (e.g.
    `{"nu_log": 0, "theta_log": 0, "B": 1}` for `RTUCell`, whose `B` has shape
    `(2, hidden_dim, in_features)`). Parameters not listed must be used only by
    the read-out (e.g. `RTUCell.weight_out`, `LRUCell.C_re`); they, and every
    parameter's immediate effect, get their gradients directly. The carry at an
    episode start must not depend on the parameters. `RTUCell`, `IndRNNCell`
    (through `RNN`), `LRUCell`, `S5Cell` and `MinGRUCell` (through `Memoroid`)
    declare it. A cell whose recurrence mixes units (`GRUCell`, `LSTMCell`, ...)
    would need full RTRL ($O(n^4)$ time per step for $n$ units, Williams and
    Zipser 1989) and is rejected.

    **The algorithm.** With $h$ the carry's real leaves ($k$ of them, each of
    `units` entries) and $\\theta$ a recurrent parameter, the sensitivity
    $S_t = \\partial h_t / \\partial \\theta$ keeps one entry per leaf and per
    entry of $\\theta$ (not per unit too), because $\\theta$ reaches only its own
    unit. It follows
    $S_t = D_t S_{t-1} + I_t$, with $D_t$ the per-unit $k \\times k$ Jacobian
    of the step with respect to the previous carry and $I_t$ the immediate
    derivative with respect to $\\theta$; both come from one `jax.vjp` of the
    step with a ones cotangent per leaf (exact under the one-unit-per-parameter
    structure). Each step runs on
    $\\mathrm{sg}(h_{t-1}) + S_{t-1} \\cdot (\\theta - \\mathrm{sg}(\\theta))$,
    whose value is $h_{t-1}$ and whose gradient with respect to $\\theta$ is
    $S_{t-1}$; so $d y_t / d\\theta$ is exact. At a reset the carry returns to
    its initial value and the sensitivities to zero.

    The output values are the wrapped model's: for an `RNN` and a sequential
    `Memoroid` the same float computation, for an associative `Memoroid` equal to
    float rounding. A `Memoroid` with `scan="associative"` keeps its $O(\\log T)$
    depth: the states come from its own resettable associative scan, every step's
    derivatives are computed in parallel, and the sensitivities by a second
    associative scan over the affine maps $S \\mapsto D_t S + I_t$. An `RNN` (and
    a `Memoroid` whose scan resolves to anything else, the CPU's default) runs
    one `lax.scan`.

    **Carry:** `(inner_carry, sensitivities)`, `sensitivities` one array of shape
    `(k, units, entries)`, zeros at the start: for each real carry leaf and unit,
    the derivatives with respect to that unit's entries of every recurrent
    parameter (in the order of `rtrl_parameters`, each parameter's unit axis
    moved first and the rest flattened). `split_sensitivities` gives them per
    parameter. **Gradients with respect to inputs** are the immediate ones,
    $\\partial y_t / \\partial x_t$ (what a lower layer of a stack receives);
    gradients with respect to the incoming carry are zero.

    **Arguments:** `model`, an `RNN` or a `Memoroid` of an RTRL-capable cell.
    Raises `ValueError` for any other model or cell.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from memrl_eqx.nn import RNN, RTRL, RTUCell

    cell = RTUCell(in_features=4, features=8, hidden_dim=16, key=jax.random.key(0))
    model = RTRL(RNN(cell))
    carry = model.init_carry()
    carry, ys = model(carry, jnp.ones((1, 4)), jnp.zeros(1, bool))  # one step
    ```
    """

    model: RNN | Memoroid
    units: int = eqx.field(static=True)
    num_leaves: int = eqx.field(static=True)
    entries: int = eqx.field(static=True)

    def __init__(self, model: AbstractSequenceModel):
        if not isinstance(model, (RNN, Memoroid)):
            raise ValueError(
                f"RTRL: `model` must be an RNN or a Memoroid of an element-wise "
                f"cell; got a {type(model).__name__}."
            )
        cell = model.cell
        name = type(cell).__name__
        declared = getattr(cell, "rtrl_parameters", None)
        if declared is None:
            raise ValueError(
                f"RTRL: {name} does not support RTRL: it does not declare "
                "`rtrl_parameters`. Exact RTRL is cheap only for an element-wise "
                "(diagonal) recurrence, where each unit's next state depends only "
                "on its own previous state; a recurrence that mixes units (through "
                "a recurrent weight matrix, as in a GRU or an LSTM) would need a "
                "full Jacobian per parameter. An element-wise cell declares "
                "`rtrl_parameters` (see RTRL). "
                "Supported: RTUCell, IndRNNCell (in RNN); LRUCell, S5Cell, "
                "MinGRUCell (in Memoroid)."
            )
        if not declared:
            raise ValueError(
                f"RTRL: {name}.rtrl_parameters is empty; it must name the "
                "parameters of the recurrence."
            )
        if isinstance(model, Memoroid) and cell.window != 1:
            raise ValueError(
                f"RTRL: {name} has an input window (window={cell.window}); RTRL "
                "supports only cells with window == 1."
            )
        carry = jax.eval_shape(model.init_carry)
        leaves = jtu.tree_leaves(carry)
        shapes = {leaf.shape for leaf in leaves}
        if not leaves or len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(
                f"RTRL: {name}'s carry leaves must all have one shape (units,); got "
                f"shapes {[leaf.shape for leaf in leaves]}."
            )
        if not all(jnp.issubdtype(leaf.dtype, jnp.inexact) for leaf in leaves):
            raise ValueError(f"RTRL: {name}'s carry leaves must be float or complex.")
        (units,) = next(iter(shapes))
        for param, axis in declared.items():
            value = getattr(cell, param, None)
            if not eqx.is_inexact_array(value):
                raise ValueError(
                    f"RTRL: {name}.rtrl_parameters names {param!r}, which is not a "
                    "floating-point array field of the cell."
                )
            if not (isinstance(axis, int) and 0 <= axis < value.ndim):
                raise ValueError(
                    f"RTRL: {name}.rtrl_parameters gives {param!r} the unit axis "
                    f"{axis!r}; its shape is {value.shape}."
                )
            if value.shape[axis] != units:
                raise ValueError(
                    f"RTRL: {name}.rtrl_parameters gives {param!r} (shape "
                    f"{value.shape}) the unit axis {axis}, of size "
                    f"{value.shape[axis]}; the carry has {units} units."
                )
        self.model = model
        self.units = units
        self.num_leaves = sum(2 if jnp.iscomplexobj(leaf) else 1 for leaf in leaves)
        self.entries = sum(getattr(cell, param).size // units for param in declared)

    @property
    def in_features(self) -> int:
        """The width of the inputs (the cell's `in_features`)."""
        return self.model.cell.in_features

    def init_carry(self) -> RTRLCarry:
        """The wrapped model's initial carry and zero sensitivities."""
        cell = self.model.cell
        dtypes = [getattr(cell, name).dtype for name in cell.rtrl_parameters]
        dtype = jnp.result_type(*dtypes) if dtypes else jnp.float32
        zeros = jnp.zeros((self.num_leaves, self.units, self.entries), dtype)
        return self.model.init_carry(), zeros

    def split_sensitivities(
        self, sensitivities: Float[Array, "leaves units entries"]
    ) -> dict[str, Float[Array, "leaves ..."]]:
        """The sensitivities per recurrent parameter: a dict from its name to an
        array of shape `(k, *parameter.shape)`, entry `[i, *index]` the derivative
        of real carry leaf `i`, at the unit of `index`, with respect to
        `parameter[index]`."""
        cell, out, start = self.model.cell, {}, 0
        for name, axis in cell.rtrl_parameters.items():
            shape = getattr(cell, name).shape
            size = getattr(cell, name).size // self.units
            block = sensitivities[:, :, start : start + size]
            moved = (self.units,) + shape[:axis] + shape[axis + 1 :]
            block = block.reshape((self.num_leaves,) + moved)
            out[name] = jnp.moveaxis(block, 1, 1 + axis)
            start += size
        return out

    def _flatten(self, params: dict[str, Array], lead: int = 0) -> Array:
        """Parameters (or derivatives with `lead` leading axes) as one array of
        shape `(*lead_axes, units, entries)`, each unit axis moved first."""
        blocks = []
        for name, axis in self.model.cell.rtrl_parameters.items():
            p = params[name]
            p = jnp.moveaxis(p, lead + axis, lead)
            blocks.append(p.reshape(p.shape[: lead + 1] + (-1,)))
        return jnp.concatenate(blocks, axis=-1)

    def _local(self, frozen: eqx.Module, h: Carry, x: Array) -> tuple[Array, Array]:
        """The immediate derivatives $I_t$, shape `(k, units, entries)`, and the
        per-unit Jacobian $D_t$, shape `(k, k, units)`, of one step from the
        carry `h` on input `x`, both without gradient."""
        names = tuple(frozen.rtrl_parameters)
        like = h

        def real_step(theta, h_real):
            cell = eqx.tree_at(
                lambda c: tuple(getattr(c, n) for n in names),
                frozen,
                tuple(theta[n] for n in names),
            )
            h = _from_real(h_real, like)
            if isinstance(self.model, RNN):
                new, _ = cell.recurrence(h, cell.input_projection(x))
            else:
                new = cell.combine(h, cell.lift(x))
            return _to_real(new)

        h_real = _to_real(h)
        theta = {name: getattr(frozen, name) for name in names}
        _, vjp = jax.vjp(real_step, theta, h_real)
        # Cotangent i is ones on real leaf i. Under the element-wise structure its
        # vjp is row i of each unit's Jacobian and, for the parameters, the
        # derivative of leaf i of each parameter entry's own unit.
        k, units = self.num_leaves, self.units
        cotangents = tuple(
            jnp.broadcast_to(jnp.eye(k, dtype=r.dtype)[:, i][:, None], (k, units))
            for i, r in enumerate(h_real)
        )
        immediate, rows = jax.vmap(vjp)(cotangents)
        # jacobian[i, j, unit] = d h_i / d h_j (previous step), per unit.
        return self._flatten(immediate, lead=1), jnp.stack(rows, axis=1)

    def _forward(self, cell, h: Carry, sensitivities: Array) -> Carry:
        """$\\mathrm{sg}(h) + S \\cdot (\\theta - \\mathrm{sg}\\,\\theta)$: `h` in
        value, with gradient $S$ with respect to the recurrent parameters."""
        theta = self._flatten(
            {name: getattr(cell, name) for name in cell.rtrl_parameters}
        )
        delta = theta - lax.stop_gradient(theta)
        phantom = jnp.sum(lax.stop_gradient(sensitivities) * delta[None], axis=-1)
        h_real = _to_real(lax.stop_gradient(h))
        return _from_real(tuple(r + phantom[i] for i, r in enumerate(h_real)), h)

    @jax.named_scope("memrl_eqx.nn.RTRL")
    def __call__(
        self,
        carry: RTRLCarry,
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[RTRLCarry, Float[Array, "time out_features"]]:
        cell = self.model.cell
        check_sequence(f"RTRL({type(cell).__name__})", xs, resets, cell.in_features)
        carry = lax.stop_gradient(carry)
        dynamic, static = eqx.partition(cell, eqx.is_inexact_array)
        frozen = eqx.combine(lax.stop_gradient(dynamic), static)
        if (
            isinstance(self.model, Memoroid)
            and self.model.resolved_scan(xs.shape[0]) == "associative"
        ):
            return self._associative(frozen, carry, xs, resets)
        return self._sequential(frozen, carry, xs, resets)

    def _sequential(self, frozen, carry, xs, resets):
        """One step at a time: a `lax.scan` over time."""
        model, cell = self.model, self.model.cell
        if isinstance(model, RNN):
            initial = cell.init_carry()
            pre = jax.vmap(cell.input_projection)(xs)
        else:
            initial = cell.identity()
            pre = jax.vmap(cell.lift)(xs)

        def step(state, inputs):
            h, sensitivities = state
            x, p, reset = inputs
            h = reset_carry(reset, initial, h)
            sensitivities = jnp.where(reset, 0.0, sensitivities)
            h_tilde = self._forward(cell, h, sensitivities)
            if isinstance(model, RNN):
                new, y = cell.recurrence(h_tilde, p)
            else:
                new = y = cell.combine(h_tilde, p)  # read outside the scan
            immediate, jacobian = self._local(frozen, h, lax.stop_gradient(x))
            sensitivities = (
                jnp.sum(jacobian[..., None] * sensitivities[None], axis=1) + immediate
            )
            return (lax.stop_gradient(new), sensitivities), y

        unroll = model.unroll if isinstance(model, RNN) else 1
        new_carry, ys = lax.scan(step, carry, (xs, pre, resets), unroll=unroll)
        if isinstance(model, Memoroid):
            ys = jax.vmap(cell.read)(ys, xs)
        return new_carry, ys

    def _associative(self, frozen, carry, xs, resets):
        """A Memoroid's associative scan: the states by the Memoroid's own
        resettable scan, each step's $(D_t, I_t)$ in parallel, the sensitivities
        by a second associative scan over the affine maps
        $S \\mapsto D_t S + I_t$, and the outputs in parallel."""
        model, cell = self.model, self.model.cell
        h0, s0 = carry
        elements = jax.vmap(cell.lift)(xs)
        # The states, without gradient: exactly the Memoroid's computation.
        scanned = jtu.tree_map(
            lambda c, e: jnp.concatenate([c[None], e]),
            h0,
            jax.vmap(frozen.lift)(lax.stop_gradient(xs)),
        )
        flags = jnp.concatenate([jnp.zeros((1,), bool), resets])
        states, _ = lax.associative_scan(model._operator, (scanned, flags))
        states = lax.stop_gradient(states)
        identity = cell.identity()
        previous = jtu.tree_map(
            lambda s, i: jnp.where(
                resets.reshape((-1,) + (1,) * i.ndim), i[None], s[:-1]
            ),
            states,
            identity,
        )
        immediate, jacobian = jax.vmap(self._local, in_axes=(None, 0, 0))(
            frozen, previous, lax.stop_gradient(xs)
        )
        # A reset forgets S_{t-1}: D_t = 0 there. Element 0 is the constant map
        # to the incoming sensitivities.
        jacobian = jnp.where(resets[:, None, None, None], 0.0, jacobian)
        jacobian = jnp.concatenate([jnp.zeros_like(jacobian[:1]), jacobian])
        immediate = jnp.concatenate([s0[None], immediate])

        def affine(a, b):
            (d_a, i_a), (d_b, i_b) = a, b
            # Sums over the k carry leaves (k is small): broadcast, not dot.
            d = jnp.sum(d_b[:, :, :, None, :] * d_a[:, None], axis=2)
            s = jnp.sum(d_b[..., None] * i_a[:, None], axis=2)
            return d, s + i_b

        _, sensitivities = lax.associative_scan(affine, (jacobian, immediate))
        # S_{t-1} for each step t, zero at a reset.
        before = jnp.where(resets[:, None, None, None], 0.0, sensitivities[:-1])

        def output(h, s, element, x):
            return cell.read(cell.combine(self._forward(cell, h, s), element), x)

        ys = jax.vmap(output)(previous, before, elements, xs)
        new_h = jtu.tree_map(lambda s: s[-1], states)
        return (new_h, sensitivities[-1]), ys
