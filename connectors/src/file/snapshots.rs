//! Book snapshot files: `snapshots.ndjson` (one [`CustomerSnapshot`] per line, as
//! schemas/snapshot.schema.json describes) and `snapshots.parquet` (the same records, one
//! row group per observation time), written atomically like every output file.
//!
//! The Parquet form is flat, for pandas and SQL engines: one column per scalar field, the
//! firing rules and reason codes as comma-separated strings, the open case as `case_*`
//! columns, and one nullable DOUBLE column `feature_<name>` per feature (the catalogue's
//! names are also top-level fields, e.g. `dpd`, hence the prefix).

use crate::error::ConnectorError;
use crate::file::sink::OutputFile;
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use riskwatch_model::snapshot::CustomerSnapshot;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The NDJSON file's name.
pub const SNAPSHOTS_NDJSON: &str = "snapshots.ndjson";
/// The Parquet file's name.
pub const SNAPSHOTS_PARQUET: &str = "snapshots.parquet";

fn io_error(path: &Path, source: std::io::Error) -> ConnectorError {
    ConnectorError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> ConnectorError {
    io_error(path, std::io::Error::other(e.to_string()))
}

/// The Parquet schema of snapshots with the features `features`.
pub fn parquet_schema(features: &[String]) -> String {
    let mut s = String::from(
        "message snapshot {\n\
         REQUIRED INT64 as_of (TIMESTAMP(MILLIS,true));\n\
         REQUIRED BINARY customer_id (STRING);\n\
         REQUIRED BINARY strategy (STRING);\n\
         REQUIRED BINARY strategy_version (STRING);\n\
         REQUIRED BOOLEAN shadow;\n\
         REQUIRED INT32 level;\n\
         OPTIONAL DOUBLE score;\n\
         REQUIRED BINARY firing (STRING);\n\
         REQUIRED BINARY reason_codes (STRING);\n\
         REQUIRED INT64 dpd;\n\
         REQUIRED INT32 bucket;\n\
         REQUIRED INT64 credit_limit;\n\
         REQUIRED INT32 apr_bps;\n\
         OPTIONAL BINARY case_id (STRING);\n\
         OPTIONAL BINARY case_stage (STRING);\n\
         OPTIONAL INT32 case_seq;\n\
         OPTIONAL BINARY case_queue (STRING);\n\
         OPTIONAL INT64 case_overdue_amount;\n\
         OPTIONAL INT64 case_opened_at (TIMESTAMP(MILLIS,true));\n\
         OPTIONAL BINARY ring_id (STRING);\n",
    );
    for f in features {
        s.push_str(&format!("OPTIONAL DOUBLE feature_{f};\n"));
    }
    s.push('}');
    s
}

/// The snapshot files of one replay, being written.
pub struct SnapshotFiles {
    ndjson: Option<OutputFile>,
    parquet: Option<SerializedFileWriter<File>>,
    parquet_path: PathBuf,
    parquet_partial: PathBuf,
    features: Vec<String>,
    written: u64,
}

/// Values of one column for a row group, with definition levels for the optional ones.
struct Column<T> {
    values: Vec<T>,
    levels: Vec<i16>,
}

impl<T> Column<T> {
    fn new() -> Column<T> {
        Column {
            values: Vec::new(),
            levels: Vec::new(),
        }
    }

    fn push(&mut self, v: Option<T>) {
        self.levels.push(v.is_some() as i16);
        if let Some(v) = v {
            self.values.push(v);
        }
    }
}

impl SnapshotFiles {
    /// Creates the two files in `dir` (which must exist) for snapshots with the features
    /// `features` (the layout's names, in order).
    pub fn create(dir: &Path, features: &[String]) -> Result<SnapshotFiles, ConnectorError> {
        let ndjson = OutputFile::create(&dir.join(SNAPSHOTS_NDJSON))?;
        let parquet_path = dir.join(SNAPSHOTS_PARQUET);
        let parquet_partial = dir.join(format!("{SNAPSHOTS_PARQUET}.partial"));
        let schema = parse_message_type(&parquet_schema(features))
            .map_err(|e| parquet_error(&parquet_path, e))?;
        let file = File::create(&parquet_partial).map_err(|e| io_error(&parquet_partial, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("riskwatch {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props))
            .map_err(|e| parquet_error(&parquet_partial, e))?;
        Ok(SnapshotFiles {
            ndjson: Some(ndjson),
            parquet: Some(writer),
            parquet_path,
            parquet_partial,
            features: features.to_vec(),
            written: 0,
        })
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes the snapshot of one observation time: `records` in the order given, as NDJSON
    /// lines and as one Parquet row group.
    pub fn write_time(&mut self, records: &[CustomerSnapshot]) -> Result<(), ConnectorError> {
        let ndjson = self.ndjson.as_mut().expect("not committed");
        for r in records {
            ndjson.write(r)?;
        }
        if records.is_empty() {
            return Ok(());
        }
        let path = self.parquet_partial.clone();
        let err = |e| parquet_error(&path, e);
        let writer = self.parquet.as_mut().expect("not committed");
        let mut rg = writer.next_row_group().map_err(err)?;
        let text = |s: &str| ByteArray::from(s.as_bytes().to_vec());
        let mut column = 0usize;
        while let Some(mut col) = rg.next_column().map_err(err)? {
            match column {
                0 => {
                    let v: Vec<i64> = records.iter().map(|r| r.as_of as i64).collect();
                    col.typed::<Int64Type>().write_batch(&v, None, None)
                }
                1..=3 => {
                    let v: Vec<ByteArray> = records
                        .iter()
                        .map(|r| {
                            text(match column {
                                1 => &r.customer_id,
                                2 => &r.strategy,
                                _ => &r.strategy_version,
                            })
                        })
                        .collect();
                    col.typed::<ByteArrayType>().write_batch(&v, None, None)
                }
                4 => {
                    let v: Vec<bool> = records.iter().map(|r| r.shadow).collect();
                    col.typed::<BoolType>().write_batch(&v, None, None)
                }
                5 | 10 | 12 => {
                    let v: Vec<i32> = records
                        .iter()
                        .map(|r| match column {
                            5 => r.level as i32,
                            10 => r.bucket as i32,
                            _ => r.apr_bps as i32,
                        })
                        .collect();
                    col.typed::<Int32Type>().write_batch(&v, None, None)
                }
                6 => {
                    let mut c = Column::new();
                    records.iter().for_each(|r| c.push(r.score));
                    col.typed::<DoubleType>()
                        .write_batch(&c.values, Some(&c.levels), None)
                }
                7 | 8 => {
                    let v: Vec<ByteArray> = records
                        .iter()
                        .map(|r| {
                            if column == 7 {
                                text(&r.firing.join(","))
                            } else {
                                let codes: Vec<&str> =
                                    r.reasons.iter().map(|x| x.code.as_str()).collect();
                                text(&codes.join(","))
                            }
                        })
                        .collect();
                    col.typed::<ByteArrayType>().write_batch(&v, None, None)
                }
                9 | 11 => {
                    let v: Vec<i64> = records
                        .iter()
                        .map(|r| if column == 9 { r.dpd } else { r.credit_limit } as i64)
                        .collect();
                    col.typed::<Int64Type>().write_batch(&v, None, None)
                }
                13 | 14 | 16 | 19 => {
                    let mut c = Column::new();
                    for r in records {
                        c.push(match column {
                            13 => r.case.as_ref().map(|k| text(&k.case_id)),
                            14 => r.case.as_ref().map(|k| text(k.stage.name())),
                            16 => r.case.as_ref().map(|k| text(&k.queue)),
                            _ => r.ring_id.as_deref().map(text),
                        });
                    }
                    col.typed::<ByteArrayType>()
                        .write_batch(&c.values, Some(&c.levels), None)
                }
                15 => {
                    let mut c = Column::new();
                    records
                        .iter()
                        .for_each(|r| c.push(r.case.as_ref().map(|k| k.seq as i32)));
                    col.typed::<Int32Type>()
                        .write_batch(&c.values, Some(&c.levels), None)
                }
                17 | 18 => {
                    let mut c = Column::new();
                    for r in records {
                        c.push(r.case.as_ref().map(|k| {
                            if column == 17 {
                                k.overdue_amount as i64
                            } else {
                                k.opened_at as i64
                            }
                        }));
                    }
                    col.typed::<Int64Type>()
                        .write_batch(&c.values, Some(&c.levels), None)
                }
                n => {
                    let name = &self.features[n - 20];
                    let mut c = Column::new();
                    for r in records {
                        c.push(
                            r.features
                                .get(name)
                                .copied()
                                .flatten()
                                .filter(|v| v.is_finite()),
                        );
                    }
                    col.typed::<DoubleType>()
                        .write_batch(&c.values, Some(&c.levels), None)
                }
            }
            .map_err(err)?;
            col.close().map_err(err)?;
            column += 1;
        }
        rg.close().map_err(err)?;
        self.written += records.len() as u64;
        Ok(())
    }

    /// Finishes both files and renames them into place; returns the records written.
    pub fn commit(mut self) -> Result<u64, ConnectorError> {
        self.ndjson.take().expect("committed once").commit()?;
        let writer = self.parquet.take().expect("committed once");
        let path = self.parquet_partial.clone();
        let file = writer.into_inner().map_err(|e| parquet_error(&path, e))?;
        file.sync_all().map_err(|e| io_error(&path, e))?;
        std::fs::rename(&path, &self.parquet_path).map_err(|e| io_error(&self.parquet_path, e))?;
        Ok(self.written)
    }
}

impl Drop for SnapshotFiles {
    fn drop(&mut self) {
        if self.parquet.is_some() {
            let _ = std::fs::remove_file(&self.parquet_partial);
        }
    }
}
