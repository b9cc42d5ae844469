//! Datasets: local formats, the hub cache layout, and seeded sampling as Python draws it.

use std::path::PathBuf;

use arena_runtime::datasets::{self, DatasetSource, Sampling};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/datasets")
}

#[test]
fn parquet_rows_read_as_json_with_either_codec() {
    for f in ["rows.snappy.parquet", "rows.zstd.parquet"] {
        let rows = datasets::read_rows(&fixtures().join(f)).unwrap();
        assert_eq!(rows.len(), 10, "{f}");
        assert_eq!(rows[3], json!({"text": "Document number 3.", "id": 3, "score": 0.75}), "{f}");
    }
}

#[test]
fn text_files_give_one_row_per_non_empty_line() {
    let rows = datasets::read_rows(&fixtures().join("lines.txt")).unwrap();
    assert_eq!(rows, vec![json!({"text": "first line"}), json!({"text": "second line"})]);
}

#[test]
fn a_folder_reads_its_data_files_in_path_order() {
    let rows = datasets::load(fixtures().to_str().unwrap(), Sampling::All, &[]).unwrap();
    // lines.txt (2 rows), rows.snappy.parquet (10), rows.zstd.parquet (10); README.md is skipped.
    assert_eq!(rows.len(), 22);
    assert_eq!(rows[0]["text"], "first line");
}

#[test]
fn hub_datasets_resolve_through_the_cache_layout() {
    let cache = tempfile::tempdir().unwrap();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = cache.path().join("datasets--org--corpus");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let snap = repo.join("snapshots").join(commit).join("data");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::write(snap.join("train-0.jsonl"), "{\"text\": \"a\"}\n{\"text\": \"b\"}\n").unwrap();
    std::fs::copy(fixtures().join("rows.zstd.parquet"), snap.join("train-1.parquet")).unwrap();

    let folder = DatasetSource::parse("hf://datasets/org/corpus/data").unwrap();
    let files = datasets::resolve(&folder, cache.path()).unwrap();
    assert_eq!(files.len(), 2);
    let rows: Vec<Value> = files.iter().flat_map(|f| datasets::read_rows(f).unwrap()).collect();
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[1]["text"], "b");

    // A pinned commit needs no ref; an unknown revision of a folder is a clear error.
    let pinned =
        DatasetSource::parse(&format!("hf://datasets/org/corpus@{commit}/data/train-0.jsonl")).unwrap();
    assert_eq!(datasets::resolve(&pinned, cache.path()).unwrap().len(), 1);
    let missing = DatasetSource::parse("hf://datasets/org/corpus@v2/data").unwrap();
    let e = datasets::resolve(&missing, cache.path()).unwrap_err().to_string();
    assert!(e.contains("is not in the hub cache"), "{e}");
}

#[test]
fn row_sampling_is_pythons_shuffle_then_the_first_n() {
    // PyRandom is CPython's generator (host/tests/pyrandom.rs checks it against the stdlib).
    let rows: Vec<u64> = (0..20).collect();
    let mut r = arena_runtime::pyrandom::PyRandom::new(42);
    let mut expect = rows.clone();
    r.shuffle(&mut expect);
    let got = datasets::sample(rows, Sampling::Rows(5), &42u64.to_be_bytes()).unwrap();
    assert_eq!(got, expect[..5].to_vec());
}

#[test]
fn page_sampling_takes_whole_pages_chosen_by_randint() {
    let rows: Vec<u32> = (0..100).collect();
    let got =
        datasets::sample(rows, Sampling::Pages { pages: 3, rows_per_page: 10 }, &7u64.to_be_bytes()).unwrap();
    assert_eq!(got.len(), 30);
    let mut r = arena_runtime::pyrandom::PyRandom::new(7);
    for (k, page) in got.chunks(10).enumerate() {
        let p = r.randint(0, 9) as u32;
        assert_eq!(page, (p * 10..p * 10 + 10).collect::<Vec<u32>>().as_slice(), "page {k}");
    }
    assert!(datasets::sample(vec![1, 2], Sampling::Pages { pages: 1, rows_per_page: 5 }, &[]).is_err());
}

#[test]
fn nltk_files_are_named_relative_to_nltks_data_path() {
    assert_eq!(
        DatasetSource::parse("nltk:corpora/words/en-basic").unwrap(),
        DatasetSource::Nltk("corpora/words/en-basic".into())
    );
    for bad in ["nltk:", "nltk:/etc/passwd", "nltk:corpora/../../x"] {
        assert!(DatasetSource::parse(bad).is_err(), "{bad}");
    }
    let e =
        datasets::resolve(&DatasetSource::Nltk("corpora/none/such-file".into()), std::path::Path::new("/x"))
            .unwrap_err()
            .to_string();
    assert!(e.contains("nltk:corpora/none/such-file is in none of NLTK's data directories"), "{e}");
}
