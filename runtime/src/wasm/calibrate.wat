(module
  (memory 1)
  (func (export "spin") (param $n i32) (result i64)
    (local $i i32) (local $s i64) (local $a i32)
    i64.const 0x1E3779B97F4A7C15
    local.set $s
    block $done
      loop $again
        local.get $i
        local.get $n
        i32.ge_u
        br_if $done
        local.get $s
        i64.const 6364136223846793005
        i64.mul
        i64.const 1442695040888963407
        i64.add
        local.tee $s
        i64.const 56
        i64.shr_u
        i32.wrap_i64
        i32.const 3
        i32.shl
        local.tee $a
        local.get $a
        i64.load
        local.get $s
        i64.xor
        i64.store
        local.get $i
        i32.const 1
        i32.add
        local.set $i
        br $again
      end
    end
    local.get $s))
