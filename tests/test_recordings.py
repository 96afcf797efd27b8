"""Loading real recordings: formats, windows, labels, the split by recording, and errors."""

import numpy as np
import pytest
import scipy.io

from drsn_edge.errors import UserError
from training import recordings

WINDOW = 64


def ramp(n, offset=0.0):
    return np.arange(n, dtype=np.float64) * 0.001 + offset


def save_mat(path, n=1000, offset=0.0, extra=None):
    data = {"X097_DE_time": ramp(n, offset)[:, None], "X097_FE_time": -ramp(n)[:, None],
            "X097RPM": np.array([[1796]])}
    data.update(extra or {})
    scipy.io.savemat(path, data)
    return path


def files_cfg(paths=(), manifest="", **kw):
    cfg = {"paths": [str(p) for p in paths], "manifest": str(manifest) if manifest else "",
           "key": "", "overlap": 0.5, "split": [0.5, 0.25, 0.25]}
    cfg.update(kw)
    return cfg


# ---------------------------------------------------------------------------- formats

def test_mat_defaults_to_the_drive_end_signal_as_flat_float64(tmp_path):
    path = save_mat(tmp_path / "97.mat", n=500)
    x = recordings.load_signal(path)
    assert x.dtype == np.float64 and x.shape == (500,)
    np.testing.assert_array_equal(x, ramp(500))


def test_mat_key_picks_a_variable_exactly_or_by_suffix(tmp_path):
    path = save_mat(tmp_path / "97.mat", n=300)
    np.testing.assert_array_equal(recordings.load_signal(path, "X097_FE_time"), -ramp(300))
    np.testing.assert_array_equal(recordings.load_signal(path, "FE_time"), -ramp(300))


def test_mat_with_two_runs_takes_the_one_named_like_the_file(tmp_path):
    path = tmp_path / "99.mat"
    scipy.io.savemat(path, {"X098_DE_time": ramp(200)[:, None],
                            "X099_DE_time": ramp(200, 5.0)[:, None]})
    assert recordings.load_signal(path)[0] == 5.0


def test_mat_without_de_time_uses_its_only_numeric_array(tmp_path):
    path = tmp_path / "run.mat"
    scipy.io.savemat(path, {"vibration": ramp(100, 1.0), "note": "bench 3"})
    np.testing.assert_array_equal(recordings.load_signal(path), ramp(100, 1.0))


def test_mat_v73_files_are_read_through_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "100.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["X100_DE_time"] = ramp(300)[None, :]  # MATLAB's column-major layout, as h5py sees it
        f["X100RPM"] = np.array([[1797.0]])
    # The 128-byte MATLAB header in the user block is what marks a file as v7.3.
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116, b" ")
    with open(path, "r+b") as f:
        f.write(header + b"\x00" * 8 + b"\x00\x02IM")
    np.testing.assert_array_equal(recordings.load_signal(path), ramp(300))


def test_csv_single_column_with_and_without_header(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(str(v) for v in ramp(50)) + "\n")
    header = tmp_path / "header.csv"
    header.write_text("acc_g\n" + "\n".join(str(v) for v in ramp(50)) + "\n")
    np.testing.assert_allclose(recordings.load_signal(plain), ramp(50))
    np.testing.assert_allclose(recordings.load_signal(header), ramp(50))


def test_csv_uses_the_first_numeric_column(tmp_path):
    path = tmp_path / "multi.csv"
    rows = [f"s{i},{v},{-v}" for i, v in enumerate(ramp(40))]
    path.write_text("name,de,fe\n" + "\n".join(rows) + "\n")
    np.testing.assert_allclose(recordings.load_signal(path), ramp(40))


def test_npz_only_array_or_named_key_and_column_arrays_are_flattened(tmp_path):
    one = tmp_path / "one.npz"
    np.savez(one, signal=ramp(80)[:, None])
    two = tmp_path / "two.npz"
    np.savez(two, a=ramp(80), b=ramp(80, 2.0))
    x = recordings.load_signal(one)
    assert x.shape == (80,)
    np.testing.assert_array_equal(recordings.load_signal(two, "b"), ramp(80, 2.0))
    with pytest.raises(UserError, match="two.npz.*several numeric arrays.*data.files.key"):
        recordings.load_signal(two)


def test_mat_structs_read_as_dotted_names_with_their_stated_rate(tmp_path):
    # MFPT's layout: one struct with the signal, its rate and the operating point.
    sig = np.sin(np.arange(4000) * 0.01)
    path = tmp_path / "baseline_1.mat"
    scipy.io.savemat(path, {"bearing": {"sr": 48000, "gs": sig[:, None], "load": 270, "rate": 25}})
    np.testing.assert_array_equal(recordings.load_signal(path), sig)
    quarter = recordings.load_signal(path, fs_hz=12000, resample=True)
    assert len(quarter) == 1000   # 48 kHz read from bearing.sr, brought to 12 kHz
    with pytest.raises(UserError, match=r"recorded at 48000 Hz but data.fs_hz = 12000"):
        recordings.load_signal(path, fs_hz=12000, resample=False)


def test_mat_struct_array_elements_are_named_by_their_name_field(tmp_path):
    # Paderborn's layout: a struct named like the file, its channels a struct array Y with
    # Name and Data fields.
    y = np.zeros((1, 3), dtype=[("Name", "O"), ("Unit", "O"), ("Data", "O")])
    y[0, 0] = ("force", "N", ramp(50)[None, :])
    y[0, 1] = ("speed", "rpm", ramp(50, 1.0)[None, :])
    y[0, 2] = ("vibration_1", "g", ramp(64, 2.0)[None, :])
    path = tmp_path / "N09_M07_F10_K001_1.mat"
    scipy.io.savemat(path, {"N09_M07_F10_K001_1": {"Info": "run 1", "Y": y}})
    np.testing.assert_array_equal(recordings.load_signal(path, "vibration_1"), ramp(64, 2.0))
    with pytest.raises(UserError, match=r"several numeric arrays.*Y\.vibration_1\.Data"):
        recordings.load_signal(path)


def test_text_time_column_is_skipped_and_states_the_rate(tmp_path):
    t = np.arange(400) / 48000.0
    sig = np.sin(np.arange(400) * 0.3)
    named = tmp_path / "run.csv"
    named.write_text("Time (s),accel_g\n" + "\n".join(f"{a!r},{b!r}" for a, b in zip(t.tolist(), sig.tolist())) + "\n")
    np.testing.assert_array_equal(recordings.load_signal(named), sig)
    assert len(recordings.load_signal(named, fs_hz=12000, resample=True)) == 100
    # No header: a first column rising in equal steps is time; blanks separate the fields.
    plain = tmp_path / "run.txt"
    plain.write_text("\n".join(f"{a!r}  {b!r}  {-b!r}" for a, b in zip(t.tolist(), sig.tolist())) + "\n")
    np.testing.assert_array_equal(recordings.load_signal(plain), sig)
    np.testing.assert_array_equal(recordings.load_signal(plain, "3"), -sig)
    assert len(recordings.load_signal(plain, fs_hz=12000, resample=True)) == 100
    with pytest.raises(UserError, match=r"run\.txt: no column 'accel' \(data.files.key\); "
                                        r"columns: 3 unnamed columns"):
        recordings.load_signal(plain, "accel")
    np.testing.assert_array_equal(recordings.load_signal(named, "ACCEL_G"), sig)


def test_time_and_index_columns_in_the_forms_files_have_them(tmp_path):
    sig = np.sin(np.arange(600) * 0.37)
    rows = lambda first: "\n".join(f"{a},{b!r}" for a, b in zip(first, sig.tolist())) + "\n"
    # ms in the name (time_ms): 10 kHz, not 10 Hz
    ms = tmp_path / "ms.csv"
    ms.write_text("time_ms,accel\n" + rows([f"{i * 0.1:.1f}" for i in range(600)]))
    np.testing.assert_array_equal(recordings.load_signal(ms, fs_hz=10000), sig)
    # no header, time printed with 5 decimals at 25.6 kHz: steps of 3e-5 and 4e-5, still time
    coarse = tmp_path / "coarse.csv"
    coarse.write_text(rows([f"{i / 25600:.5f}" for i in range(600)]))
    np.testing.assert_array_equal(recordings.load_signal(coarse), sig)
    assert len(recordings.load_signal(coarse, fs_hz=12800, resample=True)) == 300
    # no header, a counter 0, 1, 2 ...: an index, skipped, no rate
    counter = tmp_path / "counter.csv"
    counter.write_text(rows([str(i) for i in range(600)]))
    np.testing.assert_array_equal(recordings.load_signal(counter, fs_hz=10000), sig)
    # pandas' to_csv: an unnamed index column
    pandas = tmp_path / "pandas.csv"
    pandas.write_text(",accel\n" + rows([str(i) for i in range(600)]))
    np.testing.assert_array_equal(recordings.load_signal(pandas, fs_hz=10000), sig)
    # a column picked by key still gets the time column's rate
    keyed = tmp_path / "keyed.csv"
    keyed.write_text("time,x,y\n" + "\n".join(f"{i / 10000!r},0.5,{v!r}" for i, v in enumerate(sig.tolist())) + "\n")
    np.testing.assert_array_equal(recordings.load_signal(keyed, "y", fs_hz=10000), sig)
    with pytest.raises(UserError, match=r"keyed\.csv: recorded at 10000 Hz but data.fs_hz = 20000"):
        recordings.load_signal(keyed, "y", fs_hz=20000)


def test_the_delimiter_comes_from_the_data_not_the_header(tmp_path):
    sig = np.sin(np.arange(50) * 0.5)
    few = tmp_path / "few.csv"        # a header naming fewer columns than there are
    few.write_text("time\n" + "\n".join(f"{i / 1000!r},{v!r}" for i, v in enumerate(sig.tolist())) + "\n")
    np.testing.assert_array_equal(recordings.load_signal(few, fs_hz=1000), sig)
    tabs = tmp_path / "tabs.txt"      # tab-separated, commas inside the header's names
    tabs.write_text("Acc X, g\tAcc Y, g\n" + "\n".join(f"{v!r}\t{-v!r}" for v in sig.tolist()) + "\n")
    np.testing.assert_array_equal(recordings.load_signal(tabs), sig)
    np.testing.assert_array_equal(recordings.load_signal(tabs, "acc y, g"), -sig)


def test_empty_wav_rates_next_to_the_signal_and_repeated_names(tmp_path):
    import scipy.io.wavfile
    empty = tmp_path / "empty.wav"
    scipy.io.wavfile.write(empty, 12000, np.zeros(0, np.int16))
    with pytest.raises(UserError, match=r"empty\.wav: the \.wav file holds no samples"):
        recordings.load_signal(empty)
    two = tmp_path / "two.mat"        # each struct's own rate
    scipy.io.savemat(two, {"a": {"sr": 1000, "gs": ramp(100)[:, None]},
                           "b": {"sr": 2000, "gs": ramp(100, 1.0)[:, None]}})
    with pytest.raises(UserError, match=r"recorded at 2000 Hz but data.fs_hz = 1000"):
        recordings.load_signal(two, "b.gs", fs_hz=1000)
    np.testing.assert_array_equal(recordings.load_signal(two, "a.gs", fs_hz=1000), ramp(100))
    y = np.zeros((1, 2), dtype=[("Name", "O"), ("Data", "O")])
    y[0, 0] = ("vibration", ramp(40)[None, :])
    y[0, 1] = ("vibration", ramp(40, 3.0)[None, :])
    dup = tmp_path / "dup.mat"        # two channels of one name: kept apart by index
    scipy.io.savemat(dup, {"run": {"Y": y}})
    np.testing.assert_array_equal(recordings.load_signal(dup, "Y[1].Data"), ramp(40, 3.0))


def test_mat_v73_text_and_cell_contents_are_not_signals(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "meas.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["meas/vib"] = ramp(300)[None, :]
        f["meas/fs"] = np.array([[12000.0]])
        unit = f.create_dataset("meas/unit", data=np.array([[ord(c)] for c in "m/s^2"], np.uint16))
        unit.attrs["MATLAB_class"] = np.bytes_("char")
        f["#refs#/a"] = ramp(10)[None, :]
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116, b" ")
    with open(path, "r+b") as f:
        f.write(header + b"\x00" * 8 + b"\x00\x02IM")
    np.testing.assert_array_equal(recordings.load_signal(path, fs_hz=12000), ramp(300))


def test_text_file_of_any_name_that_reads_as_numbers(tmp_path):
    # The IMS rig names its files by time stamp, 4 tab-separated channels, no header.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    path = tmp_path / "2004.02.12.10.32.39"
    path.write_text("\n".join("\t".join(repr(v) for v in row) for row in x.tolist()) + "\n")
    np.testing.assert_array_equal(recordings.load_signal(path), x[:, 0])
    np.testing.assert_array_equal(recordings.load_signal(path, "2"), x[:, 1])


def test_wav_channels_in_units_of_full_scale_at_the_stated_rate(tmp_path):
    import scipy.io.wavfile
    pcm = (np.sin(np.arange(2000)[:, None] * [0.1, 0.2]) * 20000).astype(np.int16)
    stereo = tmp_path / "normal_0.wav"
    scipy.io.wavfile.write(stereo, 48000, pcm)
    np.testing.assert_array_equal(recordings.load_signal(stereo, "2"), pcm[:, 1] / 32768.0)
    with pytest.raises(UserError, match=r"normal_0\.wav: several numeric arrays.*data.files.key"):
        recordings.load_signal(stereo)
    mono = tmp_path / "normal_1.wav"
    scipy.io.wavfile.write(mono, 24000, pcm[:, 0])
    assert len(recordings.load_signal(mono, fs_hz=12000, resample=True)) == 1000


def test_folder_scan_skips_notes_but_takes_numeric_text(tmp_path):
    (tmp_path / "readme.txt").write_text("Recorded on rig 2, sensor at the drive end.\n")
    (tmp_path / "normal_0.txt").write_text("\n".join(str(v) for v in np.sin(np.arange(300))) + "\n")
    save_mat(tmp_path / "inner_race_007_0.mat", n=300)
    assert [p.name for p in recordings._scan([tmp_path])] == ["inner_race_007_0.mat", "normal_0.txt"]


# ---------------------------------------------------------------------------- load errors

def test_missing_file_is_a_user_error_naming_it(tmp_path):
    with pytest.raises(UserError, match="nothere.mat.*not found"):
        recordings.load_signal(tmp_path / "nothere.mat")


def test_unsupported_extension_names_the_file_and_the_supported_types(tmp_path):
    path = tmp_path / "run.bin"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(UserError, match=r"run\.bin.*'\.bin'.*\.mat, \.csv, \.npz, \.wav"):
        recordings.load_signal(path)
    damaged = tmp_path / "run.wav"
    damaged.write_bytes(b"RIFF")
    with pytest.raises(UserError, match=r"run\.wav: not a readable \.wav file"):
        recordings.load_signal(damaged)


def test_unknown_mat_key_lists_the_variables_present(tmp_path):
    path = save_mat(tmp_path / "97.mat")
    with pytest.raises(UserError, match=r"97\.mat.*'BA_time'.*X097_DE_time.*X097_FE_time"):
        recordings.load_signal(path, "BA_time")


def test_nan_and_inf_are_counted_with_the_first_index(tmp_path):
    x = ramp(100)
    x[[17, 40, 41]] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "broken.npz"
    np.savez(path, signal=x)
    with pytest.raises(UserError, match=r"broken\.npz: 3 NaN/inf values \(first at index 17\)"):
        recordings.load_signal(path)


def test_nan_in_csv_is_reported_too(tmp_path):
    path = tmp_path / "gap.csv"
    path.write_text("1.0\n2.0\nnan\n4.0\n")
    with pytest.raises(UserError, match=r"gap\.csv: 1 NaN/inf values \(first at index 2\)"):
        recordings.load_signal(path)


def test_empty_header_only_and_non_numeric_csv_are_user_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header_only.csv"
    header_only.write_text("acc\n")
    words = tmp_path / "words.csv"
    words.write_text("acc\n0.1\n0.2\noops\n0.4\n")
    with pytest.raises(UserError, match=r"empty\.csv.*empty"):
        recordings.load_signal(empty)
    with pytest.raises(UserError, match=r"header_only\.csv.*only a header"):
        recordings.load_signal(header_only)
    with pytest.raises(UserError, match=r"words\.csv: line 4.*'oops' is not a number"):
        recordings.load_signal(words)


def test_damaged_mat_and_multichannel_arrays_are_user_errors(tmp_path):
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"not a matlab file at all" * 10)
    wide = tmp_path / "wide.npz"
    np.savez(wide, signal=np.zeros((100, 3)))
    with pytest.raises(UserError, match=r"junk\.mat"):
        recordings.load_signal(junk)
    with pytest.raises(UserError, match=r"wide\.npz.*shape \(100, 3\).*one channel"):
        recordings.load_signal(wide)


# ---------------------------------------------------------------------------- windows

@pytest.mark.parametrize("overlap,hop,count", [(0.0, 64, 15), (0.5, 32, 30), (0.75, 16, 59)])
def test_windows_count_and_hop_follow_the_overlap(overlap, hop, count):
    signal = np.arange(1000.0)
    w = recordings.windows(signal, WINDOW, overlap)
    assert w.shape == (count, WINDOW)
    assert count == 1 + (1000 - WINDOW) // hop
    np.testing.assert_array_equal(w[:, 0], np.arange(count) * hop)
    np.testing.assert_array_equal(w[3], signal[3 * hop:3 * hop + WINDOW])


@pytest.mark.parametrize("overlap", [1.0, -0.1, 1.5])
def test_overlap_outside_zero_to_one_is_a_user_error(overlap):
    with pytest.raises(UserError, match="overlap"):
        recordings.windows(np.zeros(500), WINDOW, overlap)


def test_recording_shorter_than_a_window_reports_both_lengths(tmp_path):
    save_mat(tmp_path / "inner_race_007_short.mat", n=40)
    with pytest.raises(UserError, match=r"inner_race_007_short\.mat.*40 samples.*window of 64"):
        recordings.load_dataset(files_cfg([tmp_path]), WINDOW, seed=0)


# ---------------------------------------------------------------------------- labels

@pytest.mark.parametrize("name,label", [
    ("inner_race_007_1797rpm.mat", "inner_race_007"),
    ("Outer_Race_021_load3.csv", "outer_race_021"),
    ("normal_2.npz", "normal"),
    ("IR014_1.mat", "inner_race_014"),
    ("B021_0.mat", "ball_021"),
    ("OR007@6_2.mat", "outer_race_007"),
    ("130.mat", None),
])
def test_labels_from_file_names(name, label):
    assert recordings.label_from_name(name) == label


def test_user_mapping_matches_whole_stems_for_numbers_and_substrings_otherwise():
    mapping = {"97": "normal", "105": "inner_race_007", "drive_ok": "normal"}
    assert recordings.label_from_name("97.mat", mapping) == "normal"
    assert recordings.label_from_name("197.mat", mapping) is None
    assert recordings.label_from_name("rig_drive_ok_3.csv", mapping) == "normal"


def make_set(folder, per_class=4, classes=("normal", "ball_014", "outer_race_021"), n=640):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for c_i, c in enumerate(classes):
        for r in range(per_class):
            # A distinct offset per recording lets the test trace windows back to their file.
            paths.append(save_mat(folder / f"{c}_{r}.mat", n=n + 64 * r, offset=100 * c_i + 10 * r))
    return paths


def test_split_is_by_recording_stratified_and_complete(tmp_path):
    make_set(tmp_path / "rec")
    data = recordings.load_dataset(files_cfg([tmp_path / "rec"]), WINDOW, seed=3)
    assert data["classes"] == ["normal", "ball_014", "outer_race_021"]
    seen = {}
    total = 0
    for split in ("train", "val", "test"):
        x, y, rec = data[split]
        assert x.dtype == np.float32 and x.shape[1] == WINDOW
        assert y.dtype == np.int64 and rec.dtype == np.int64
        assert sorted(set(y.tolist())) == [0, 1, 2]  # every class in every split
        for r in set(rec.tolist()):
            assert r not in seen, f"recording {r} in {seen.get(r)} and {split}"
            seen[r] = split
            assert len(set(y[rec == r].tolist())) == 1
        total += len(x)
    assert sorted(seen) == list(range(12))
    # 4 recordings per class at [0.5, 0.25, 0.25] -> 2 / 1 / 1 per class.
    assert sorted(list(seen.values()).count(s) for s in ("train", "val", "test")) == [3, 3, 6]
    # 640 + 64 r samples, hop 32 -> 19 + 2 r windows; three classes.
    assert total == 3 * sum(19 + 2 * r for r in range(4))


def test_split_windows_carry_the_samples_of_their_recording(tmp_path):
    make_set(tmp_path / "rec")
    data = recordings.load_dataset(files_cfg([tmp_path / "rec"]), WINDOW, seed=3)
    x, _, rec = data["train"]
    for r in set(rec.tolist()):
        first = x[rec == r][0]
        expected = recordings.load_signal(data["recordings"][r])[:WINDOW]
        np.testing.assert_allclose(first, expected, rtol=1e-6)


def test_split_is_deterministic_for_a_seed(tmp_path):
    make_set(tmp_path / "rec", per_class=6)
    cfg = files_cfg([tmp_path / "rec"])
    a = recordings.load_dataset(cfg, WINDOW, seed=1)
    b = recordings.load_dataset(cfg, WINDOW, seed=1)
    others = [recordings.load_dataset(cfg, WINDOW, seed=s) for s in (2, 3, 4)]
    for split in ("train", "val", "test"):
        for u, v in zip(a[split], b[split]):
            assert u.tobytes() == v.tobytes()
    train_ids = lambda d: sorted(set(d["train"][2].tolist()))  # noqa: E731
    assert any(train_ids(o) != train_ids(a) for o in others)


def test_labels_from_a_manifest_with_relative_paths(tmp_path):
    data_dir = tmp_path / "raw"
    data_dir.mkdir()
    rows = ["path,label"]
    for label in ("normal", "healthy_but_loud"):
        for r in range(3):
            name = f"run_{label}_{r}.npz"
            np.savez(data_dir / name, signal=ramp(400, r))
            rows.append(f"raw/{name},{label}")
    manifest = tmp_path / "labels.csv"
    manifest.write_text("\n".join(rows) + "\n")
    data = recordings.load_dataset(files_cfg(manifest=manifest), WINDOW, seed=0)
    # Known classes first in signals.CLASSES order, then custom labels sorted.
    assert data["classes"] == ["normal", "healthy_but_loud"]
    for split in ("train", "val", "test"):
        assert sorted(set(data[split][1].tolist())) == [0, 1]
    assert len(data["recordings"]) == 6


def test_manifest_overrides_the_file_name_for_listed_files(tmp_path):
    paths = make_set(tmp_path / "rec", per_class=3, classes=("normal", "ball_007"))
    manifest = tmp_path / "m.csv"
    manifest.write_text("".join(f"rec/{p.name},outer_race_014\n" for p in paths[:3]))
    data = recordings.load_dataset(files_cfg([tmp_path / "rec"], manifest), WINDOW, seed=0)
    assert data["classes"] == ["ball_007", "outer_race_014"]


# ---------------------------------------------------------------------------- data set errors

def test_unlabelled_file_says_to_add_it_to_a_manifest(tmp_path):
    make_set(tmp_path / "rec", per_class=3, classes=("normal",))
    save_mat(tmp_path / "rec" / "mystery_run.mat")
    with pytest.raises(UserError, match=r"mystery_run\.mat.*manifest"):
        recordings.load_dataset(files_cfg([tmp_path / "rec"]), WINDOW, seed=0)


def test_class_with_too_few_recordings_is_explained(tmp_path):
    make_set(tmp_path / "rec", per_class=3, classes=("normal",))
    save_mat(tmp_path / "rec" / "ball_007_0.mat")
    with pytest.raises(UserError, match=r"'ball_007' has only 1 recording.*ball_007_0\.mat"
                                        r".*needs 3 per class.*data\.files\.test"):
        recordings.load_dataset(files_cfg([tmp_path / "rec"]), WINDOW, seed=0)


def test_class_declared_in_manifest_without_files_is_explained(tmp_path):
    make_set(tmp_path / "rec", per_class=3, classes=("normal",))
    manifest = tmp_path / "declared.csv"
    manifest.write_text("path,label\nelsewhere/a.mat,ball_021\n")
    with pytest.raises(UserError, match=r"'ball_021' is declared in .*declared\.csv"):
        recordings.load_dataset(files_cfg([tmp_path / "rec"], manifest), WINDOW, seed=0)


def test_manifest_pointing_at_a_missing_file_names_it(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("gone/lost.mat,normal\n")
    with pytest.raises(UserError, match=r"lost\.mat.*not found"):
        recordings.load_dataset(files_cfg(manifest=manifest), WINDOW, seed=0)


def test_missing_path_and_empty_config_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"nowhere.*data\.files\.paths"):
        recordings.load_dataset(files_cfg([tmp_path / "nowhere"]), WINDOW, seed=0)
    with pytest.raises(UserError, match=r"data\.files\.paths is empty"):
        recordings.load_dataset(files_cfg(), WINDOW, seed=0)


@pytest.mark.parametrize("split", [[0.8, 0.2], [0.0, 0.5, 0.5], [1, -0.5, 0.5]])
def test_bad_split_shares_are_user_errors(tmp_path, split):
    make_set(tmp_path / "rec", per_class=3, classes=("normal",))
    with pytest.raises(UserError, match=r"data\.files\.split"):
        recordings.load_dataset(files_cfg([tmp_path / "rec"], split=split), WINDOW, seed=0)


def test_folders_are_scanned_in_name_order_ignoring_other_files(tmp_path):
    make_set(tmp_path / "rec", per_class=3, classes=("normal",))
    (tmp_path / "rec" / "notes.txt").write_text("bench log")
    data = recordings.load_dataset(files_cfg([tmp_path / "rec"]), WINDOW, seed=0)
    names = [p.rsplit("/", 1)[-1] for p in data["recordings"]]
    assert names == ["normal_0.mat", "normal_1.mat", "normal_2.mat"]


# ---------------------------------------------------------------------------- conditions

def rig(folder, loads=(0, 1, 2, 3), classes=("normal", "ball_014", "outer_race_021"), n=640,
        fs=None):
    """One recording per class per load, like a real test rig, with a manifest naming the
    load of each (and, when given, its sample rate)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["path,label,load" + (",fs_hz" if fs else "")]
    for c_i, c in enumerate(classes):
        for load in loads:
            name = f"{c_i}{load}.mat"  # names that say nothing: the manifest labels them
            save_mat(folder / name, n=n, offset=100 * c_i + 10 * load)
            lines.append(f"{name},{c},{load}" + (f",{fs}" if fs else ""))
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


def load_of(data, split, folder):
    names = [data["recordings"][i].rsplit("/", 1)[-1] for i in np.unique(data[split][2])]
    return sorted({int(n[1]) for n in names})


def test_test_set_by_manifest_column_holds_out_a_load(tmp_path):
    manifest = rig(tmp_path / "rig")
    cfg = files_cfg([tmp_path / "rig"], manifest, split=[1, 0, 0], test={"load": [3]})
    data = recordings.load_dataset(cfg, WINDOW, seed=0)
    assert load_of(data, "test", tmp_path / "rig") == [3]
    assert 3 not in load_of(data, "train", tmp_path / "rig")
    assert data["test_unseen"].all() and set(data["test_group"]) == {"load=3"}
    # 3 classes x 1 recording at load 3, 640 samples, window 64, hop 32 -> 19 windows each
    assert len(data["test"][1]) == 3 * 19
    # Nothing was held out for validation: it comes from the tails of the training
    # recordings and may not select a model.
    assert data["selects"] is False
    assert set(np.unique(data["val"][2])) <= set(np.unique(data["train"][2]))


def test_validation_by_column_selects_and_shares_no_recording(tmp_path):
    manifest = rig(tmp_path / "rig")
    cfg = files_cfg([tmp_path / "rig"], manifest, split=[1, 0, 0], test={"load": [3]},
                    val={"load": [2]})
    data = recordings.load_dataset(cfg, WINDOW, seed=0, train_window=80)
    assert load_of(data, "val", tmp_path / "rig") == [2]
    assert load_of(data, "train", tmp_path / "rig") == [0, 1]
    assert data["selects"] is True
    assert data["train"][0].shape[1] == 80 and data["val"][0].shape[1] == WINDOW
    assert data["split"]["test_by"] == {"load": ["3"]}


def test_column_selectors_are_checked_against_the_manifest(tmp_path):
    manifest = rig(tmp_path / "rig")
    with pytest.raises(UserError, match=r"no column 'speed' \(columns: label, load\)"):
        recordings.load_dataset(files_cfg([tmp_path / "rig"], manifest, test={"speed": [1]}), WINDOW, 0)
    with pytest.raises(UserError, match=r"load = 7.*values present: 0, 1, 2, 3"):
        recordings.load_dataset(files_cfg([tmp_path / "rig"], manifest, test={"load": [7]}), WINDOW, 0)
    make_set(tmp_path / "named", per_class=1)
    with pytest.raises(UserError, match=r"data\.files\.test.*data\.files\.manifest is empty"):
        recordings.load_dataset(files_cfg([tmp_path / "named"], test={"load": [3]}), WINDOW, 0)
    with pytest.raises(UserError, match=r"both data\.files\.test and data\.files\.val"):
        recordings.load_dataset(files_cfg([tmp_path / "rig"], manifest, split=[1, 0, 0],
                                          test={"load": [3]}, val={"load": [3]}), WINDOW, 0)


def test_a_manifest_inside_a_listed_folder_is_not_a_recording(tmp_path):
    manifest = rig(tmp_path / "rig")
    data = recordings.load_dataset(files_cfg([tmp_path / "rig"], manifest, split=[1, 0, 0],
                                             test={"load": [3]}), WINDOW, seed=0)
    assert not any(p.endswith("manifest.csv") for p in data["recordings"])
    assert len(data["recordings"]) == 12
    # Also when the manifest is not the configured one: its header gives it away.
    (tmp_path / "rig" / "other_manifest.csv").write_text("path,label\n00.mat,normal\n")
    assert recordings.is_manifest(tmp_path / "rig" / "other_manifest.csv")
    assert not recordings.is_manifest(tmp_path / "rig" / "00.mat")


def test_a_stated_sample_rate_is_resampled_or_refused(tmp_path):
    manifest = rig(tmp_path / "rig", fs=48000, n=2560)
    cfg = files_cfg([tmp_path / "rig"], manifest, split=[1, 0, 0], test={"load": [3]})
    data = recordings.load_dataset(cfg, WINDOW, seed=0, fs_hz=12000.0)
    # 2560 samples at 48 kHz -> 640 at 12 kHz -> 19 windows of 64 with hop 32
    assert len(data["test"][1]) == 3 * 19
    # A ramp stays a ramp, four times steeper per sample (away from the filter's edges).
    x = data["test"][0][5]
    assert np.allclose(np.diff(x), 0.004, atol=2e-4)
    assert data["split"]["sample_rates"] == {"from_manifest": 12, "from_file": 0, "assumed_fs_hz": 0,
                                             "resampled": 12}
    with pytest.raises(UserError, match=r"00\.mat: recorded at 48000 Hz but data\.fs_hz = 12000.*resample"):
        recordings.load_dataset({**cfg, "resample": False}, WINDOW, seed=0, fs_hz=12000.0)


def test_where_each_rate_came_from_is_reported_and_an_assumed_rate_said(tmp_path, capsys):
    """Most public sets store no rate (CWRU's .mat files): the rate taken is said, and the
    report counts the recordings by where their rate came from."""
    manifest = rig(tmp_path / "rig", n=640)
    np.savez(tmp_path / "rig" / "extra.npz", signal=ramp(1280), fs=np.array(24000.0))
    with open(manifest, "a") as f:
        f.write("extra.npz,normal,0\n")
    cfg = files_cfg([tmp_path / "rig"], manifest, split=[1, 0, 0], test={"load": [3]})
    data = recordings.load_dataset(cfg, WINDOW, seed=0, fs_hz=12000.0)
    assert data["split"]["sample_rates"] == {"from_manifest": 0, "from_file": 1, "assumed_fs_hz": 12,
                                             "resampled": 1}
    out = capsys.readouterr().out
    assert "12 of 13 recordings state no sample rate; taken as data.fs_hz = 12000 Hz" in out


def test_npz_stating_its_rate_is_checked_too(tmp_path):
    path = tmp_path / "normal_0.npz"
    np.savez(path, signal=ramp(640), fs=np.array(48000.0))
    assert recordings.load_signal(path, fs_hz=12000.0, resample=True).size == 160
    with pytest.raises(UserError, match=r"normal_0\.npz: recorded at 48000 Hz but data\.fs_hz = 12000"):
        recordings.load_signal(path, fs_hz=12000.0)


def test_split_in_time_keeps_a_window_gap_and_says_so(tmp_path):
    make_set(tmp_path / "rec", per_class=1)
    cfg = files_cfg([tmp_path / "rec"], split=[0.6, 0.2, 0.2], by_time=True, overlap=0.0)
    data = recordings.load_dataset(cfg, WINDOW, seed=0)
    assert set(data["test_group"]) == {"time-split (recordings also in training)"}
    assert not data["test_unseen"].any()
    # Windows carry their recording's ramp: the first test sample of a recording lies at
    # least a window after its last training sample.
    for rec in np.unique(data["train"][2]):
        last_train = data["train"][0][data["train"][2] == rec].max()
        first_val = data["val"][0][data["val"][2] == rec].min()
        first_test = data["test"][0][data["test"][2] == rec].min()
        assert first_val - last_train >= WINDOW * 0.001 - 1e-6
        assert first_test > first_val


def test_manifest_inside_a_listed_folder_is_not_a_recording(tmp_path):
    from training import recordings
    for name in ("normal_1.csv", "normal_2.csv"):
        (tmp_path / name).write_text("\n".join(["1.0"] * 10))
    (tmp_path / "labels.csv").write_text("path,label\nnormal_1.csv,normal\n")
    (tmp_path / "other.csv").write_text("path,label\nnormal_2.csv,normal\n")
    found = recordings._scan([tmp_path], tmp_path / "labels.csv")
    assert [p.name for p in found] == ["normal_1.csv", "normal_2.csv"]


def test_a_stated_sample_rate_equal_to_fs_hz_is_accepted(tmp_path):
    import numpy as np
    from training import recordings
    np.savez(tmp_path / "normal_1.npz", signal=np.ones(100), fs=12000)
    assert recordings.load_signal(tmp_path / "normal_1.npz", fs_hz=12000.0).size == 100


# ---------------------------------------------------------------------------- public data sets' layouts
# Synthetic files written the way public bearing/gearbox data sets store theirs (layouts from
# their documentation and loaders), with known numbers in them.

H = np.round(np.sin(np.arange(2560) * 0.37) * 0.8, 4)       # "horizontal" channel
V = np.round(np.cos(np.arange(2560) * 0.11) * 0.3, 4)       # "vertical" channel


def stated_rate(path, key=""):
    """The rate a file states, from the refusal at a rate it cannot have (None: none stated)."""
    try:
        recordings.load_signal(path, key, fs_hz=1.0, resample=False)
    except UserError as exc:
        return float(str(exc).split("recorded at ")[1].split(" Hz")[0])
    return None


def test_xjtu_sy_named_columns_no_rate_in_the_file(tmp_path):
    path = tmp_path / "1.csv"
    path.write_text("Horizontal_vibration_signals,Vertical_vibration_signals\n"
                    + "".join(f"{a},{b}\n" for a, b in zip(H.tolist(), V.tolist())))
    np.testing.assert_array_equal(recordings.load_signal(path), H)
    np.testing.assert_array_equal(recordings.load_signal(path, "vertical_vibration_signals"), V)
    assert stated_rate(path) is None        # 25.6 kHz comes from the manifest's fs_hz
    assert len(recordings.load_signal(path, "", 12800, rate=25600.0, resample=True)) == 1280


def femto_lines(sep, start_us=(9 * 3600 + 39 * 60 + 39) * 10**6 + 965438):
    """PRONOSTIA's acc_*.csv: hour, minute, second, microsecond, horizontal, vertical; no header.
    The clock crosses a second (and a minute) boundary inside the file."""
    out = []
    for i, (a, b) in enumerate(zip(H.tolist(), V.tolist())):
        t = start_us + int(i * 1e6 / 25600)
        h, rest = divmod(t % (24 * 3600 * 10**6), 3600 * 10**6)
        m, rest = divmod(rest, 60 * 10**6)
        s, us = divmod(rest, 10**6)
        out.append(sep.join([str(h), str(m), str(s), f"{us}.0" if i % 2 else str(us), repr(a), repr(b)]))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("sep", [",", ";"])
def test_femto_clock_columns_are_skipped_and_give_25600_hz(tmp_path, sep):
    path = tmp_path / "acc_00001.csv"
    path.write_text(femto_lines(sep, start_us=(9 * 3600 + 59 * 60 + 59) * 10**6 + 965438))
    np.testing.assert_array_equal(recordings.load_signal(path, fs_hz=25600), H)
    np.testing.assert_array_equal(recordings.load_signal(path, "6", fs_hz=25600), V)
    assert stated_rate(path) == 25600.0 and stated_rate(path, "6") == 25600.0
    assert stated_rate(path, "1") is None   # a clock column picked on purpose states nothing
    assert len(recordings.load_signal(path, fs_hz=12800, resample=True)) == 1280


def test_femto_clock_across_midnight_still_gives_25600_hz(tmp_path):
    # A run-to-failure test goes on through the night: a file can start at 23:59:59.99.
    path = tmp_path / "acc_00713.csv"
    text = femto_lines(",", start_us=(23 * 3600 + 59 * 60 + 59) * 10**6 + 990000)
    assert text.splitlines()[-1].startswith("0,0,0,")
    path.write_text(text)
    np.testing.assert_array_equal(recordings.load_signal(path, fs_hz=25600), H)
    assert stated_rate(path) == 25600.0


def seu_file(path, sep, preamble, trailing=""):
    block = np.stack([H, V, -H, -V, H / 2, V / 2, H * 2, V * 2], 1)
    path.write_text("".join(f"{line}\n" for line in preamble)
                    + "".join(sep.join(repr(float(x)) for x in row) + trailing + "\n" for row in block))
    return block


def test_seu_gearbox_text_preamble_before_eight_channels(tmp_path):
    # Southeast University's gearset/bearingset: 16 lines of text, then 8 channels with a
    # separator closing each line; tabs in most files, commas in ball_20_0.csv.
    comma = tmp_path / "ball_20_0.csv"
    block = seu_file(comma, ",", [f"Information {i}: drivetrain dynamics simulator, 2018" for i in range(15)]
                     + ["Data"], trailing=",")
    np.testing.assert_array_equal(recordings.load_signal(comma), block[:, 0])
    np.testing.assert_array_equal(recordings.load_signal(comma, "2"), block[:, 1])   # planetary x
    assert len(recordings.load_signal(comma)) == 2560 and stated_rate(comma) is None
    tab = tmp_path / "Health_30_2.csv"
    block = seu_file(tab, "\t", [f"Parameter {i}\tvalue {i}" for i in range(16)], trailing="\t")
    np.testing.assert_array_equal(recordings.load_signal(tab, "8"), block[:, 7])
    with pytest.raises(UserError, match=r"Health_30_2\.csv: no column '9' \(data.files.key\); "
                                        r"columns: 8 unnamed columns"):
        recordings.load_signal(tab, "9")


def test_jnu_single_column_and_phm2009_tab_columns(tmp_path):
    jnu = tmp_path / "ib600_2.csv"
    jnu.write_text("".join(f"{a!r}\n" for a in H.tolist()))
    np.testing.assert_array_equal(recordings.load_signal(jnu), H)
    # PHM 2009 gearbox: input accelerometer, output accelerometer, tachometer; 66,666.67 Hz
    tach = np.where(np.arange(2560) % 50 < 5, 5.0, 0.0)
    phm = tmp_path / "Run_1.csv"
    phm.write_text("".join(f"{a!r},{b!r},{t!r}\n" for a, b, t in zip(H.tolist(), V.tolist(), tach.tolist())))
    np.testing.assert_array_equal(recordings.load_signal(phm), H)
    np.testing.assert_array_equal(recordings.load_signal(phm, "2"), V)
    assert stated_rate(phm) is None
    assert len(recordings.load_signal(phm, "", 12000, rate=200000 / 3, resample=True)) == 461  # 2560 * 0.18
    tabs = tmp_path / "spur_1_30hz_High_1.txt"
    tabs.write_text("".join(f"{a!r}\t{b!r}\t{t!r}\n" for a, b, t in zip(H.tolist(), V.tolist(), tach.tolist())))
    np.testing.assert_array_equal(recordings.load_signal(tabs), H)


def test_mafaulda_tachometer_first_column_is_not_the_default(tmp_path):
    # MAFAULDA: 8 columns, no header: tachometer, underhang axial/radial/tangential,
    # overhang axial/radial/tangential, microphone; 50 kHz (not in the file).
    rng = np.random.default_rng(3)
    tach = np.where(np.arange(2560) % 170 < 12, 4.9, 0.05) + np.round(rng.normal(0, 0.01, 2560), 4)
    path = tmp_path / "13.5168.csv"
    path.write_text("".join(",".join(f"{x:.4f}" for x in (t, a, b, -a, -b, a / 2, b / 2, 0.1 * a)) + "\n"
                            for t, a, b in zip(tach.tolist(), H.tolist(), V.tolist())))
    np.testing.assert_array_equal(recordings.load_signal(path), H)      # column 2, underhang axial
    np.testing.assert_allclose(recordings.load_signal(path, "1"), np.round(tach, 4))
    assert stated_rate(path) is None


def test_columns_named_as_speed_or_voltage_are_not_the_default(tmp_path):
    # Fraunhofer's unbalance set: V_in, Measured_RPM, Vibration_1..3 (4096 Hz, not in the file)
    rpm = np.linspace(600, 2300, 2560)
    path = tmp_path / "0D.csv"
    path.write_text("V_in,Measured_RPM,Vibration_1,Vibration_2,Vibration_3\n"
                    + "".join(f"{r / 400:.4f},{r:.2f},{a},{b},{-a}\n" for r, a, b in zip(rpm.tolist(), H.tolist(), V.tolist())))
    np.testing.assert_array_equal(recordings.load_signal(path), H)
    np.testing.assert_array_equal(recordings.load_signal(path, "measured_rpm"), np.round(rpm, 2))
    wide = tmp_path / "vb.csv"   # a time stamp, then a second of samples along each line
    wide.write_text("".join(f"{t}," + ",".join(f"{x:.4f}" for x in np.sin(np.arange(1024) * 0.1 * (t + 1))) + "\n"
                            for t in range(4)))
    with pytest.raises(UserError, match=r"vb\.csv: 1025 numbers per line in 4 lines: the samples seem to "
                                        r"run along the lines; store one sample per line"):
        recordings.load_signal(wide)


def test_a_pure_tone_is_vibration_not_a_pulse_train(tmp_path):
    path = tmp_path / "tone.csv"
    tone = np.sin(np.arange(3000) * 2 * np.pi / 40)
    path.write_text("".join(f"{a!r},{b!r}\n" for a, b in zip(tone.tolist(), (tone / 2).tolist())))
    np.testing.assert_array_equal(recordings.load_signal(path), tone)


def test_decimal_commas_with_semicolons_tabs_or_blanks(tmp_path):
    def euro(x):
        return repr(float(x)).replace(".", ",")
    semi = tmp_path / "messung.csv"
    semi.write_text("Zeit;Beschleunigung\n" + "".join(f"{euro(i / 10000)};{euro(a)}\n" for i, a in enumerate(H.tolist())))
    np.testing.assert_array_equal(recordings.load_signal(semi), H)
    assert stated_rate(semi) == 10000.0                       # "Zeit" is time, 0,0001 s a step
    tabs = tmp_path / "run.txt"
    tabs.write_text("".join(f"{euro(a)}\t{euro(b)}\n" for a, b in zip(H.tolist(), V.tolist())))
    np.testing.assert_array_equal(recordings.load_signal(tabs, "2"), V)
    assert recordings.load_signal(tmp_path / "run.txt")[1] == H[1]
    blanks = tmp_path / "run.dat"
    blanks.write_text("".join(f"{euro(a)}  {euro(b)}\n" for a, b in zip(H.tolist(), V.tolist())))
    np.testing.assert_array_equal(recordings.load_signal(blanks), H)


def test_comma_only_lines_of_whole_numbers_that_may_be_decimal_commas_are_refused(tmp_path):
    path = tmp_path / "komma.csv"
    path.write_text("".join(f"{int(a * 1000)},{abs(int(b * 1000))}\n" for a, b in zip(H, V)))
    with pytest.raises(UserError, match=r"komma\.csv: every line is two whole numbers split by a comma "
                                        r"\('.*'\): a decimal comma, or two columns of integers\? Save it "
                                        r"with '\.' as the decimal mark or with ';' between columns, or set "
                                        r"data\.files\.key to the column \(1 or 2\) if they are columns"):
        recordings.load_signal(path)
    # ... unless the key says they are columns
    np.testing.assert_array_equal(recordings.load_signal(path, "2"), [abs(int(b * 1000)) for b in V])
    four = tmp_path / "vier.csv"      # 0,046,1,250: a fraction's leading zero gives it away
    four.write_text("".join(f"0,{i % 1000:03d},1,{(7 * i) % 1000:03d}\n" for i in range(500)))
    with pytest.raises(UserError, match=r"vier\.csv: every line is whole numbers split by commas, some "
                                        r"with a leading zero"):
        recordings.load_signal(four)
    indexed = tmp_path / "indexed.csv"  # an index counting by 1, then whole numbers: not decimals
    indexed.write_text("".join(f"{i},{(37 * i) % 200 - 100}\n" for i in range(500)))
    np.testing.assert_array_equal(recordings.load_signal(indexed), [(37 * i) % 200 - 100 for i in range(500)])
    counts = tmp_path / "counts.csv"  # an index and integer counts stay readable
    counts.write_text("".join(f"{i},{(37 * i) % 200 - 100},{(11 * i) % 50}\n" for i in range(500)))
    np.testing.assert_array_equal(recordings.load_signal(counts), [(37 * i) % 200 - 100 for i in range(500)])


def test_two_integer_columns_that_cannot_be_decimal_commas_load(tmp_path):
    """ADC counts in two columns: a header naming them, a sign after the comma, or a first
    column rising in even steps (time in ms) say they are columns."""
    ax = [(37 * i) % 2000 for i in range(400)]
    ay = [(53 * i) % 1500 - 700 for i in range(400)]
    named = tmp_path / "named.csv"
    named.write_text("ax,ay\n" + "".join(f"{a},{abs(b)}\n" for a, b in zip(ax, ay)))
    np.testing.assert_array_equal(recordings.load_signal(named), ax)
    np.testing.assert_array_equal(recordings.load_signal(named, "ay"), [abs(b) for b in ay])
    signed = tmp_path / "signed.csv"
    signed.write_text("".join(f"{a},{b}\n" for a, b in zip(ax, ay)))
    np.testing.assert_array_equal(recordings.load_signal(signed, "2"), ay)
    np.testing.assert_array_equal(recordings.load_signal(signed), ax)
    timed = tmp_path / "timed.csv"
    timed.write_text("t_ms,ax\n" + "".join(f"{10 * i},{a}\n" for i, a in enumerate(ax)))
    np.testing.assert_array_equal(recordings.load_signal(timed), ax)
    assert stated_rate(timed) == 100.0


def test_a_time_column_named_by_its_unit_alone_is_time(tmp_path):
    """A header of just `ms` (or `us`) over the time axis: time, and its step the rate."""
    acc = np.round(np.cos(np.arange(500) / 5), 6)
    path = tmp_path / "units.csv"
    path.write_text("ms,acc\n" + "".join(f"{5 * i},{a}\n" for i, a in enumerate(acc)))
    np.testing.assert_array_equal(recordings.load_signal(path), acc)
    assert stated_rate(path) == 200.0
    micro = tmp_path / "micro.csv"
    micro.write_text("us,acc\n" + "".join(f"{50 * i},{a}\n" for i, a in enumerate(acc)))
    assert stated_rate(micro) == 20000.0


def test_a_column_empty_in_its_first_rows_keeps_the_header_and_every_row(tmp_path):
    """pandas writes NaN as an empty field: a rolling mean's first cells are empty, and the
    header and those rows are still the file's, not a preamble."""
    acc = np.round(np.sin(np.arange(1000) / 7), 6)
    lines = ["time,acc,acc_smooth"] + [f"{i / 1000},{a}," + ("" if i < 4 else f"{a / 2}")
                                       for i, a in enumerate(acc)]
    path = tmp_path / "smoothed.csv"
    path.write_text("\n".join(lines) + "\n")
    np.testing.assert_array_equal(recordings.load_signal(path), acc)
    np.testing.assert_array_equal(recordings.load_signal(path, "acc"), acc)
    assert stated_rate(path) == 1000.0


def test_a_vibration_column_named_with_a_condition_word_is_still_vibration(tmp_path):
    """'load' or 'temp' inside a vibration channel's name (acc_load_side) does not make it a
    load or temperature channel; Measured_RPM and V_in still are not vibration."""
    a, b = ramp(300), -ramp(300)
    sides = tmp_path / "sides.csv"
    sides.write_text("acc_load_side,acc_motor_side\n" + "".join(f"{x},{y}\n" for x, y in zip(a, b)))
    np.testing.assert_array_equal(recordings.load_signal(sides), a)
    comp = tmp_path / "comp.csv"
    comp.write_text("Temperature_compensated_acc,raw_acc\n" + "".join(f"{x},{y}\n" for x, y in zip(a, b)))
    np.testing.assert_array_equal(recordings.load_signal(comp), a)
    rig = tmp_path / "rig.csv"
    rig.write_text("V_in,Measured_RPM,Vibration_1\n" + "".join(f"{x},{1500 + x},{y}\n" for x, y in zip(a, b)))
    np.testing.assert_array_equal(recordings.load_signal(rig), b)


def test_latin1_header_and_crlf_lines(tmp_path):
    path = tmp_path / "messung.csv"   # a European DAQ's export: Latin-1 units, CRLF
    path.write_bytes(("Zeit [s];Beschleunigung [m/s²]\r\n" + "".join(
        f"{i / 5000};{a}\r\n".replace(".", ",") for i, a in enumerate(H.tolist()))).encode("latin-1"))
    np.testing.assert_array_equal(recordings.load_signal(path), H)
    assert stated_rate(path) == 5000.0
    np.testing.assert_array_equal(recordings.load_signal(path, "beschleunigung [m/s²]"), H)
    binary = tmp_path / "run.dat"
    binary.write_bytes(np.arange(100, dtype=np.float32).tobytes())
    with pytest.raises(UserError, match=r"run\.dat: not a text file"):
        recordings.load_signal(binary)


def test_quoted_fields(tmp_path):
    path = tmp_path / "quoted.csv"   # a spreadsheet's export quoting every field
    path.write_text('"time","acc"\n' + "".join(f'"{i / 1000}","{a}"\n' for i, a in enumerate(H.tolist())))
    np.testing.assert_array_equal(recordings.load_signal(path), H)
    assert stated_rate(path) == 1000.0
    euro = tmp_path / "quoted_euro.csv"
    euro.write_text('"Zeit";"acc"\n' + "".join(f'"{i / 1000}";"{a}"\n'.replace(".", ",")
                                                for i, a in enumerate(H.tolist())))
    np.testing.assert_array_equal(recordings.load_signal(euro), H)


def test_header_over_lines_closed_by_a_delimiter_after_a_preamble(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Recorder export\nChannels: 2\nacc_x,acc_y\n"
                    + "".join(f"{a},{b},\n" for a, b in zip(H.tolist(), V.tolist())))
    np.testing.assert_array_equal(recordings.load_signal(path, "ACC_Y"), V)


@pytest.mark.parametrize("junk", ["", ",", ",,", "NaN,NaN", "nan,"])
def test_thousands_of_trailing_empty_or_nan_lines_end_the_signal(tmp_path, junk):
    path = tmp_path / "export.csv"
    path.write_text("acc,vel\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(H.tolist(), V.tolist())) + f"{junk}\n" * 3000)
    x = recordings.load_signal(path)
    assert x.shape == (2560,)
    np.testing.assert_array_equal(x, H)
    gap = tmp_path / "gap.csv"   # NaN inside the recording is still refused
    gap.write_text("acc\n1.0\nNaN\n2.0\n" + "NaN\n" * 100)
    with pytest.raises(UserError, match=r"gap\.csv: 1 NaN/inf values \(first at index 1\)"):
        recordings.load_signal(gap)


def test_units_row_under_the_names_and_labview_measurement_files(tmp_path):
    units = tmp_path / "daq.csv"
    units.write_text("Time,Accel\nms,g\n" + "".join(f"{i * 0.1:.1f},{a!r}\n" for i, a in enumerate(H.tolist())))
    np.testing.assert_array_equal(recordings.load_signal(units), H)
    assert stated_rate(units) == 10000.0
    np.testing.assert_array_equal(recordings.load_signal(units, "g"), H)
    lvm = tmp_path / "run_1.lvm"     # LabVIEW's text export: two header blocks, X_Value, a Comment column
    head = ["LabVIEW Measurement\t", "Writer_Version\t2", "Separator\tTab", "Decimal_Separator\t.",
            "***End_of_Header***\t", "", "Channels\t2\t", "Samples\t2560\t2560",
            "Delta_X\t3.906250E-5\t3.906250E-5", "***End_of_Header***\t",
            "X_Value\tUntitled\tUntitled 1\tComment"]
    lvm.write_text("\n".join(head) + "\n"
                   + "".join(f"{i / 25600:.6f}\t{a!r}\t{b!r}\t\n" for i, (a, b) in enumerate(zip(H.tolist(), V.tolist()))))
    np.testing.assert_array_equal(recordings.load_signal(lvm), H)
    np.testing.assert_array_equal(recordings.load_signal(lvm, "Untitled 1"), V)
    assert stated_rate(lvm) == 25600.0
    assert [q.name for q in recordings._scan([tmp_path])] == ["daq.csv", "run_1.lvm"]


def test_excel_and_tdms_files_say_how_to_convert_them(tmp_path):
    # HUSTbearing (Huazhong) ships Excel workbooks; NI rigs write TDMS.
    book = tmp_path / "0.5X_B_65Hz.xlsx"
    book.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(UserError, match=r"0\.5X_B_65Hz\.xlsx: unsupported file type '\.xlsx'; save the sheet "
                                        r"as \.csv \(a column per channel\) and list that, or convert it to one of"):
        recordings.load_signal(book)
    with pytest.raises(UserError, match=r"folder has no .* recordings \(\.xlsx files: save the sheet as \.csv"):
        recordings._scan([tmp_path])
    tdms = tmp_path / "current.tdms"
    tdms.write_bytes(b"TDSm" + bytes(100))
    with pytest.raises(UserError, match=r"current\.tdms: unsupported file type '\.tdms'; export its vibration"):
        recordings.load_signal(tdms)


def test_hust_data_and_fs(tmp_path):
    path = tmp_path / "0.5X_B_65Hz.mat"
    scipy.io.savemat(path, {"data": H[:, None], "fs": np.array([[51200]])})
    np.testing.assert_array_equal(recordings.load_signal(path, fs_hz=51200), H)
    assert stated_rate(path) == 51200.0


def test_ottawa_two_channels_name_the_key(tmp_path):
    # University of Ottawa (variable speed): Channel_1 accelerometer, Channel_2 speed encoder.
    path = tmp_path / "H-A-1.mat"
    scipy.io.savemat(path, {"Channel_1": H[:, None], "Channel_2": V[:, None]})
    with pytest.raises(UserError, match=r"H-A-1\.mat: several numeric arrays and none ending in _DE_time "
                                        r"\(variables: Channel_1 \(2560, 1\), Channel_2 \(2560, 1\)\); "
                                        r"set data.files.key to the one to use"):
        recordings.load_signal(path)
    np.testing.assert_array_equal(recordings.load_signal(path, "Channel_1"), H)


def test_matrix_of_channels_is_picked_by_number(tmp_path):
    # DIRG (Politecnico di Torino): one [samples, 6] matrix named like the file.
    block = np.stack([H, V, -H, -V, H / 2, V / 2], 1)
    path = tmp_path / "C4A_300_505_1.mat"
    scipy.io.savemat(path, {"C4A_300_505_1": block})
    with pytest.raises(UserError, match=r"C4A_300_505_1\.mat: C4A_300_505_1 has shape \(2560, 6\), 6 channels, "
                                        r"not one channel; pick one with data.files.key = '1' \(this file's "
                                        r"C4A_300_505_1; or 'C4A_300_505_1:1'\), a channel from 1 to 6"):
        recordings.load_signal(path)
    np.testing.assert_array_equal(recordings.load_signal(path, "2"), V)
    np.testing.assert_array_equal(recordings.load_signal(path, "C4A_300_505_1:4"), -V)
    with pytest.raises(UserError, match=r"C4A_300_505_1 has 6 channels \(shape \(2560, 6\)\), no channel 7"):
        recordings.load_signal(path, "7")
    # [channels, samples], e.g. four sensors in rows: the shorter side counts channels
    rows = tmp_path / "rows.npz"
    np.savez(rows, data=block[:, :4].T.copy())
    np.testing.assert_array_equal(recordings.load_signal(rows, "3"), -H)
    uored = tmp_path / "H_1_0.mat"        # UORED-VAFCLS: named like the file, accelerometer then microphone
    scipy.io.savemat(uored, {"H_1_0": np.stack([H, V], 1)})
    np.testing.assert_array_equal(recordings.load_signal(uored, "1"), H)
    with pytest.raises(UserError, match=r"H_1_0\.mat: H_1_0 has shape \(2560, 2\), 2 channels"):
        recordings.load_signal(uored)
    cube = tmp_path / "cube.npz"          # a leading axis of one
    np.savez(cube, x=block[None, :, :3])
    np.testing.assert_array_equal(recordings.load_signal(cube, "x:2"), V)
    pt = tmp_path / "PT500_IF_1.mat"      # four sensors in rows of a .mat
    scipy.io.savemat(pt, {"data": block[:, :4].T.copy()})
    np.testing.assert_array_equal(recordings.load_signal(pt, "4"), -V)
    one = tmp_path / "97.mat"
    save_mat(one, n=300)
    with pytest.raises(UserError, match=r"97\.mat: X097_DE_time holds one channel \(shape \(300, 1\)\), "
                                        r"no channel 2"):
        recordings.load_signal(one, "2")


def test_kaist_labview_waveform_struct_states_its_interval(tmp_path):
    # KAIST rig: LabVIEW's waveform export, Signal.y_values.values [samples, 4] beside
    # Signal.x_values.increment (seconds per sample).
    block = np.stack([H, V, -H, -V], 1)
    signal = {"x_values": {"start_value": 0.0, "increment": 1 / 25600, "number_of_values": 2560},
              "y_values": {"values": block, "quantity": {"label": "g"}},
              "function_record": {"name": "Signal"}}
    path = tmp_path / "0Nm_BPFI_03.mat"
    scipy.io.savemat(path, {"Signal": signal})
    with pytest.raises(UserError, match=r"Signal\.y_values\.values has shape \(2560, 4\), 4 channels"):
        recordings.load_signal(path)
    np.testing.assert_array_equal(recordings.load_signal(path, "3", fs_hz=25600), -H)
    assert stated_rate(path, "Signal.y_values.values:1") == 25600.0
    two = tmp_path / "two_signals.mat"   # accelerometers and a microphone, each its own waveform
    scipy.io.savemat(two, {"Signal_0": signal, "Signal_1": {**signal, "x_values": {
        "start_value": 0.0, "increment": 1 / 51200, "number_of_values": 2560}}})
    assert stated_rate(two, "Signal_1.y_values.values:2") == 51200.0
    assert stated_rate(two, "Signal_0.y_values.values:2") == 25600.0


def test_cwru_48k_without_rpm_and_two_runs_of_other_numbers(tmp_path):
    de = tmp_path / "109.mat"          # 48 kHz drive-end files: DE, FE, BA, no RPM; no rate inside
    scipy.io.savemat(de, {"X109_DE_time": H[:, None], "X109_FE_time": V[:, None], "X109_BA_time": -H[:, None]})
    np.testing.assert_array_equal(recordings.load_signal(de), H)
    assert stated_rate(de) is None
    np.testing.assert_array_equal(recordings.load_signal(de, "BA_time"), -H)
    two = tmp_path / "IR007_1.mat"     # renamed: the file name no longer says which run is its own
    scipy.io.savemat(two, {"X105_DE_time": H[:, None], "X106_DE_time": V[:, None]})
    with pytest.raises(UserError, match=r"IR007_1\.mat: several drive-end signals \(X105_DE_time, "
                                        r"X106_DE_time\); set data.files.key to the one to use"):
        recordings.load_signal(two)
    np.testing.assert_array_equal(recordings.load_signal(two, "X106_DE_time"), V)
    other = tmp_path / "174.mat"       # a file whose one run carries another number (X173)
    scipy.io.savemat(other, {"X173_DE_time": V[:, None], "X173_FE_time": H[:, None], "X173RPM": 1730.0})
    np.testing.assert_array_equal(recordings.load_signal(other), V)


def test_paderborn_nesting_with_x_and_y_channels_of_one_name(tmp_path):
    # Paderborn: a struct named like the file with Info, X (slow channels) and Y (fast ones),
    # each a struct array of Name, Type, Unit, Data (a row), Raster; 'speed' in both.
    fields = [("Name", "O"), ("Type", "O"), ("Unit", "O"), ("Data", "O"), ("Raster", "O")]
    x = np.zeros((1, 2), dtype=fields)
    x[0, 0] = ("force", "PT", "N", ramp(40)[None, :], "Mech_4kHz")
    x[0, 1] = ("speed", "PT", "rpm", ramp(40, 1.0)[None, :], "Mech_4kHz")
    y = np.zeros((1, 3), dtype=fields)
    y[0, 0] = ("phase_current_1", "PT", "A", ramp(640, 2.0)[None, :], "HostService")
    y[0, 1] = ("vibration_1", "PT", "m/s^2", H[None, :640], "HostService")
    y[0, 2] = ("speed", "PT", "rpm", ramp(640, 3.0)[None, :], "HostService")
    name = "N15_M07_F10_KA01_1"
    path = tmp_path / f"{name}.mat"
    scipy.io.savemat(path, {name: {"Info": "bearing KA01", "X": x, "Y": y, "Description": "run 1"}})
    np.testing.assert_array_equal(recordings.load_signal(path, "vibration_1"), H[:640])
    np.testing.assert_array_equal(recordings.load_signal(path, "Y.speed"), ramp(640, 3.0))
    with pytest.raises(UserError, match=r"N15_M07_F10_KA01_1\.mat: several variables match 'speed' \(data.files.key\); "
                                        r"variables present: .*N15_M07_F10_KA01_1\.X\.speed\.Data \(1, 40\)"):
        recordings.load_signal(path, "speed")
    assert stated_rate(path, "vibration_1") is None   # 64 kHz: from the manifest
