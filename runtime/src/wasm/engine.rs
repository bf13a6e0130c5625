//! The process-wide wasmtime `Engine`: configuration, the epoch ticker and fuel calibration.

use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::RuntimeConfig;
use super::cpu::thread_cpu_time;
use super::error::{WasmError, error_chain};

/// How often the engine's epoch advances. Deadlines, cancellation and CPU throttling act at
/// the latest one tick after they are due.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core instances allowed per pooling slot: a component instantiates several core modules.
const CORE_INSTANCES_PER_SLOT: u32 = 4;
/// Tables allowed per pooling slot.
const TABLES_PER_SLOT: u32 = 2;
/// Linear memory kept resident (and reset in place) when a pooling slot is reused.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// Builds the engine: pooling allocator sized by `config`, fuel, epoch interruption.
pub(crate) fn build_engine(config: &RuntimeConfig) -> Result<Engine, WasmError> {
    let engine_err = |reason: String| WasmError::Engine { reason };
    if config.max_instances == 0 {
        return Err(engine_err("max_instances must be at least 1".into()));
    }
    let max_memory = usize::try_from(config.max_memory_bytes)
        .map_err(|_| engine_err("max_memory_bytes does not fit in usize".into()))?;
    if max_memory < 64 * 1024 {
        return Err(engine_err(
            "max_memory_bytes must be at least one 64 KiB page".into(),
        ));
    }
    let slots = config.max_instances;

    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_SLOT))
        .total_memories(slots)
        .total_tables(slots.saturating_mul(TABLES_PER_SLOT))
        .total_stacks(slots)
        .max_memory_size(max_memory)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES.min(max_memory))
        .table_keep_resident(64 * 1024)
        .pagemap_scan(Enabled::Auto);

    let mut cfg = Config::new();
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .consume_fuel(true)
        .epoch_interruption(true)
        .wasm_component_model(true)
        // Each slot reserves exactly its maximum: with 4 GiB (the default) bounds checks are
        // elided by guard pages; smaller slots get explicit bounds checks instead.
        .memory_reservation(config.max_memory_bytes)
        .memory_reservation_for_growth(0)
        .parallel_compilation(true);
    Engine::new(&cfg).map_err(|e| engine_err(error_chain(&e)))
}

/// Starts the thread that advances the engine's epoch every [`EPOCH_TICK`]. It stops by itself
/// once the engine is dropped.
pub(crate) fn start_epoch_ticker(engine: &Engine) -> Result<(), WasmError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("skiff-wasm-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .map(|_| ())
        .map_err(|e| WasmError::Engine {
            reason: format!("cannot start the epoch ticker thread: {e}"),
        })
}

/// The calibration kernel, `calibrate.wat` assembled: `spin(n)` runs `n` rounds of an integer
/// and memory loop (a linear congruential step, a shift, a load-xor-store into a small table),
/// the shape of a typical compiled hot loop.
const CALIBRATION_WASM: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7e,
    0x03, 0x02, 0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x08, 0x01, 0x04, 0x73, 0x70, 0x69,
    0x6e, 0x00, 0x00, 0x0a, 0x5d, 0x01, 0x5b, 0x03, 0x01, 0x7f, 0x01, 0x7e, 0x01, 0x7f, 0x42, 0x95,
    0xf8, 0xa9, 0xfa, 0x97, 0xb7, 0xde, 0x9b, 0x1e, 0x21, 0x02, 0x02, 0x40, 0x03, 0x40, 0x20, 0x01,
    0x20, 0x00, 0x4f, 0x0d, 0x01, 0x20, 0x02, 0x42, 0xad, 0xfe, 0xd5, 0xe4, 0xd4, 0x85, 0xfd, 0xa8,
    0xd8, 0x00, 0x7e, 0x42, 0xcf, 0x82, 0x9e, 0xbb, 0xef, 0xef, 0xde, 0x82, 0x14, 0x7c, 0x22, 0x02,
    0x42, 0x38, 0x88, 0xa7, 0x41, 0x03, 0x74, 0x22, 0x03, 0x20, 0x03, 0x29, 0x03, 0x00, 0x20, 0x02,
    0x85, 0x37, 0x03, 0x00, 0x20, 0x01, 0x41, 0x01, 0x6a, 0x21, 0x01, 0x0c, 0x00, 0x0b, 0x0b, 0x20,
    0x02, 0x0b, 0x00, 0x28, 0x04, 0x6e, 0x61, 0x6d, 0x65, 0x02, 0x0f, 0x01, 0x00, 0x04, 0x00, 0x01,
    0x6e, 0x01, 0x01, 0x69, 0x02, 0x01, 0x73, 0x03, 0x01, 0x61, 0x03, 0x10, 0x01, 0x00, 0x02, 0x00,
    0x04, 0x64, 0x6f, 0x6e, 0x65, 0x01, 0x05, 0x61, 0x67, 0x61, 0x69, 0x6e,
];

/// CPU time one calibration sample should take.
const SAMPLE_CPU: Duration = Duration::from_millis(20);
/// Samples taken; the median is used.
const SAMPLES: usize = 3;

/// Measures how much fuel this machine burns per CPU-second running the calibration kernel
/// under this engine's code generation (fuel and epoch instrumentation included). Takes about
/// `SAMPLES * SAMPLE_CPU` plus a small compile, on the calling thread.
pub(crate) fn calibrate_fuel(engine: &Engine) -> Result<u64, WasmError> {
    let fail = |what: &str, e: wasmtime::Error| WasmError::Calibration {
        reason: format!("{what}: {}", error_chain(&e)),
    };
    let module = wasmtime::Module::from_binary(engine, CALIBRATION_WASM)
        .map_err(|e| fail("compiling the kernel", e))?;
    let mut store = wasmtime::Store::new(engine, ());
    store
        .set_fuel(u64::MAX)
        .map_err(|e| fail("setting fuel", e))?;
    // Far enough that the ticker never interrupts calibration.
    store.set_epoch_deadline(1 << 40);
    let instance = wasmtime::Instance::new(&mut store, &module, &[])
        .map_err(|e| fail("instantiating the kernel", e))?;
    let spin = instance
        .get_typed_func::<i32, i64>(&mut store, "spin")
        .map_err(|e| fail("finding spin", e))?;

    let mut rounds: i32 = 20_000;
    spin.call(&mut store, rounds)
        .map_err(|e| fail("warming up", e))?;
    let mut rates = Vec::with_capacity(SAMPLES);
    let mut attempts = 0;
    while rates.len() < SAMPLES {
        attempts += 1;
        if attempts > 64 {
            return Err(WasmError::Calibration {
                reason: "the kernel never ran long enough to measure".into(),
            });
        }
        let fuel_before = store.get_fuel().map_err(|e| fail("reading fuel", e))?;
        let cpu_before = thread_cpu_time();
        spin.call(&mut store, rounds)
            .map_err(|e| fail("running the kernel", e))?;
        let cpu = thread_cpu_time().saturating_sub(cpu_before);
        let fuel = fuel_before - store.get_fuel().map_err(|e| fail("reading fuel", e))?;
        if cpu < SAMPLE_CPU / 2 {
            // Too short to trust: scale the rounds towards one sample's worth of CPU.
            let factor = (SAMPLE_CPU.as_secs_f64() / cpu.as_secs_f64().max(1e-6)).clamp(2.0, 64.0);
            rounds = ((f64::from(rounds) * factor) as i64).min(i64::from(i32::MAX)) as i32;
            continue;
        }
        rates.push(fuel as f64 / cpu.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    if !(median.is_finite() && median >= 1.0) {
        return Err(WasmError::Calibration {
            reason: format!("implausible rate {median} fuel per CPU-second"),
        });
    }
    Ok(median as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_bytes_match_their_source() {
        let text = include_str!("calibrate.wat");
        assert_eq!(wat::parse_str(text).unwrap(), CALIBRATION_WASM);
    }
}
