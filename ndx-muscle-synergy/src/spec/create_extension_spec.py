"""Generate the YAML of the NWB extension ``ndx-muscle-synergy`` into ``spec/``.

Run from anywhere: ``python src/spec/create_extension_spec.py`` (in ``ndx-muscle-synergy/``).
The two files it writes (``ndx-muscle-synergy.namespace.yaml`` and
``ndx-muscle-synergy.extensions.yaml``) are committed and shipped inside the wheel at
``ndx_muscle_synergy/spec/``. Edit this script, never the YAML; bump ``VERSION`` together with
the version in ``pyproject.toml``.

Types
-----
MuscleSynergy (DynamicTable)
    One row per muscle. ``weights`` holds one column per synergy (signed float32); the optional
    ``offset`` column holds a constant added to every reconstructed sample (the decoder bias of
    an RLVM; NMF has none). Optional per-row references to the source EMG: the series, its
    column, and the electrode row, so that every EMG layout maps in (one 2-D TimeSeries, one
    TimeSeries per muscle, or an ElectricalSeries).
SynergyActivation (TimeSeries)
    Activation coefficients, time x synergies; column k belongs to column k of the linked
    MuscleSynergy's ``weights``.
SpikeTriggeredAverageTable (DynamicTable)
    One row per (unit, muscle) pair: the spike-triggered average of that muscle's rectified
    EMG around that unit's spikes, the spike counts, the post-spike effect and its measures,
    and the signed muscle-field value. Long form (rather than one row per unit with a 3-D
    column) so that every measure is a plain 1-D column, rows can be filtered with pandas, and
    units recorded with different muscle sets fit in one table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pynwb.spec import (
    NWBAttributeSpec,
    NWBDatasetSpec,
    NWBGroupSpec,
    NWBLinkSpec,
    NWBNamespaceBuilder,
    NWBRefSpec,
    export_spec,
)

NAMESPACE = "ndx-muscle-synergy"
VERSION = "0.1.0"
AUTHORS = ["nwb_synergy developers"]
CONTACTS = ["nwb-synergy@users.noreply.github.com"]
#: the extension's folder (``ndx-muscle-synergy/``), whose ``spec/`` receives the YAML
ROOT = Path(__file__).resolve().parents[2]


def _text_attr(name: str, doc: str, required: bool = True) -> NWBAttributeSpec:
    return NWBAttributeSpec(name=name, doc=doc, dtype="text", required=required)


def _software_attributes() -> list[NWBAttributeSpec]:
    return [
        NWBAttributeSpec(
            name="parameters",
            doc=(
                "Parameters of the analysis as a JSON object, such that running the same software "
                "version with them reproduces the result (including the random seed)."
            ),
            dtype="text",
        ),
        _text_attr("software", "Name of the software that produced the result."),
        _text_attr("software_version", "Version of that software."),
        _text_attr(
            "provenance",
            "Further provenance as a JSON object: fit measures, the conditioning applied to the "
            "EMG (ordered steps with their parameters), versions of the numerical libraries.",
            required=False,
        ),
    ]


def _column(
    name: str, doc: str, dtype, dims=("num_rows",), shape=(None,), required: bool = True
) -> NWBDatasetSpec:
    return NWBDatasetSpec(
        name=name,
        neurodata_type_inc="VectorData",
        doc=doc,
        dtype=dtype,
        dims=list(dims),
        shape=list(shape),
        quantity=1 if required else "?",
    )


def _region(name: str, doc: str, required: bool = True) -> NWBDatasetSpec:
    return NWBDatasetSpec(
        name=name,
        neurodata_type_inc="DynamicTableRegion",
        doc=doc,
        dims=["num_rows"],
        shape=[None],
        quantity=1 if required else "?",
    )


def _emg_reference_columns(row: str) -> list[NWBDatasetSpec]:
    return [
        _column(
            "emg_series",
            f"Source EMG series of each {row} (object reference to a TimeSeries in this file: "
            "a 2-D series, a per-muscle 1-D series, or an ElectricalSeries).",
            NWBRefSpec(target_type="TimeSeries", reftype="object"),
            required=False,
        ),
        _column(
            "emg_channel",
            f"Column of 'emg_series' that holds the EMG of each {row} (0 for a 1-D series).",
            "uint32",
            required=False,
        ),
    ]


def muscle_synergy_spec() -> NWBGroupSpec:
    """Spec of MuscleSynergy (one row per muscle)."""
    return NWBGroupSpec(
        neurodata_type_def="MuscleSynergy",
        neurodata_type_inc="DynamicTable",
        doc=(
            "Muscle synergies: one row per muscle, one column of 'weights' per synergy. Column k "
            "of 'weights' is synergy k, whose activation is column k of the SynergyActivation "
            "linking to this table. The EMG is reconstructed as activation @ weights.T + offset."
        ),
        attributes=[
            _text_attr(
                "method",
                "Factorization method, e.g. 'nmf' (non-negative matrix factorization) or 'rlvm' "
                "(rectified latent variable model).",
            ),
            NWBAttributeSpec(
                name="nonnegative",
                doc="Whether the method constrains the weights to be non-negative.",
                dtype="bool",
            ),
            *_software_attributes(),
        ],
        datasets=[
            _column("muscle_name", "Name of the muscle of each row.", "text"),
            _column(
                "weights",
                "Synergy weights: one row per muscle, one column per synergy (signed unless "
                "'nonnegative'); each synergy is usually scaled to unit Euclidean norm.",
                "float32",
                dims=("num_muscles", "num_synergies"),
                shape=(None, None),
            ),
            _column(
                "offset",
                "Constant added to every reconstructed sample of each muscle (e.g. the decoder "
                "bias of an RLVM), in the units of the EMG the synergies were fitted on.",
                "float32",
                required=False,
            ),
            *_emg_reference_columns("muscle"),
            _region(
                "electrodes",
                "Row of the electrodes table of each muscle, when the EMG is an ElectricalSeries.",
                required=False,
            ),
            NWBDatasetSpec(
                name="variance_accounted_for",
                doc=(
                    "Uncentered variance accounted for (1 - SSE / sum of squares, a fraction) by "
                    "each synergy alone: the reconstruction from that synergy's activation and "
                    "weights (plus 'offset') compared with the EMG it was fitted on."
                ),
                dtype="float32",
                dims=["num_synergies"],
                shape=[None],
                quantity="?",
            ),
        ],
    )


def synergy_activation_spec() -> NWBGroupSpec:
    """Spec of SynergyActivation (time x synergies)."""
    return NWBGroupSpec(
        neurodata_type_def="SynergyActivation",
        neurodata_type_inc="TimeSeries",
        doc=(
            "Activation coefficients of muscle synergies over time. Column k is the activation of "
            "synergy k of the linked MuscleSynergy (non-negative)."
        ),
        datasets=[
            NWBDatasetSpec(
                name="data",
                doc="Activations, one column per synergy of the linked MuscleSynergy.",
                dtype="float32",
                dims=["num_times", "num_synergies"],
                shape=[None, None],
                attributes=[
                    NWBAttributeSpec(
                        name="unit",
                        doc=(
                            "Unit of the activations: that of the EMG the synergies were fitted "
                            "on (weights are dimensionless), e.g. 'a.u.' after normalisation."
                        ),
                        dtype="text",
                    ),
                ],
            )
        ],
        links=[
            NWBLinkSpec(
                name="muscle_synergy",
                doc="The MuscleSynergy whose synergies these activations belong to.",
                target_type="MuscleSynergy",
            )
        ],
    )


def spike_triggered_average_spec() -> NWBGroupSpec:
    """Spec of SpikeTriggeredAverageTable (one row per unit and muscle)."""
    nan_note = "NaN where no effect was found."
    return NWBGroupSpec(
        neurodata_type_def="SpikeTriggeredAverageTable",
        neurodata_type_inc="DynamicTable",
        doc=(
            "Spike-triggered averages (STA) of rectified EMG and post-spike effects: one row per "
            "(unit, muscle) pair. 'sta' holds the average at the times in 'lags' relative to "
            "each spike; the effect columns classify post-spike facilitation (PSF) and "
            "suppression (PSpS); 'field_value' over the rows of a unit is its muscle field."
        ),
        attributes=[
            NWBAttributeSpec(
                name="window",
                doc="Start and stop of the averaging window relative to the spike, in seconds.",
                dtype="float64",
                dims=["start|stop"],
                shape=[2],
            ),
            NWBAttributeSpec(
                name="emg_rate",
                doc="Sampling rate of the EMG that was averaged, in Hz.",
                dtype="float64",
            ),
            _text_attr(
                "emg_unit",
                "Unit of 'sta' (that of the rectified EMG, e.g. 'V').",
            ),
            *_software_attributes(),
        ],
        datasets=[
            NWBDatasetSpec(
                name="lags",
                doc="Time of each STA sample relative to the spike, in seconds.",
                dtype="float64",
                dims=["num_lags"],
                shape=[None],
            ),
            _region("unit", "Row of the Units table of the unit of each row."),
            _column("muscle_name", "Name of the muscle of each row.", "text"),
            *_emg_reference_columns("row"),
            _column(
                "sta",
                "Spike-triggered average of the rectified EMG, one value per lag.",
                "float32",
                dims=("num_rows", "num_lags"),
                shape=(None, None),
            ),
            _column("n_spikes_used", "Number of spikes whose sweeps were averaged.", "uint32"),
            _column(
                "n_spikes_excluded",
                "Number of spikes left out (window outside the recording or other exclusion).",
                "uint32",
            ),
            _column(
                "effect",
                "Post-spike effect class: 'PSF' (facilitation), 'PSpS' (suppression) or 'none'.",
                "text",
                required=False,
            ),
            _column(
                "mpi",
                "Mean percent increase: 100 x (mean in the effect window - baseline mean) / "
                "baseline mean. " + nan_note,
                "float64",
                required=False,
            ),
            _column(
                "ppi",
                "Peak percent increase: 100 x (peak - baseline mean) / baseline mean. " + nan_note,
                "float64",
                required=False,
            ),
            _column(
                "p_value",
                "p-value of the effect test (multiple-fragment analysis), in [0, 1]; NaN if not "
                "tested.",
                "float64",
                required=False,
            ),
            _column(
                "onset",
                "Onset of the effect after the spike, in seconds. " + nan_note,
                "float64",
                required=False,
            ),
            _column(
                "peak_latency",
                "Latency of the effect's peak (or trough) after the spike, in seconds. " + nan_note,
                "float64",
                required=False,
            ),
            _column(
                "offset",
                "End of the effect after the spike, in seconds. " + nan_note,
                "float64",
                required=False,
            ),
            _column(
                "field_value",
                "Signed muscle-field value (positive for PSF, negative for PSpS, scaled so the "
                "largest magnitude of a unit is 1); 0 where no significant effect.",
                "float64",
                required=False,
            ),
        ],
    )


def main(output_dir: Path = ROOT / "spec") -> list[Path]:
    """Write the namespace and extension YAML into ``output_dir`` and return their paths."""
    builder = NWBNamespaceBuilder(
        name=NAMESPACE,
        version=VERSION,
        full_name="Muscle synergies and spike-triggered averages of EMG",
        doc=(
            "Muscle synergies (NMF, RLVM), their activations, and spike-triggered averages of EMG "
            "with post-spike effects and muscle fields."
        ),
        author=AUTHORS,
        contact=CONTACTS,
    )
    for type_name in ("DynamicTable", "VectorData", "DynamicTableRegion", "TimeSeries"):
        builder.include_type(type_name, namespace="core")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)  # export_spec does not create its folder
    export_spec(
        builder,
        [muscle_synergy_spec(), synergy_activation_spec(), spike_triggered_average_spec()],
        str(output_dir),
    )
    return [output_dir / f"{NAMESPACE}.namespace.yaml", output_dir / f"{NAMESPACE}.extensions.yaml"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=ROOT / "spec")
    for path in main(parser.parse_args().output_dir):
        print(path)
