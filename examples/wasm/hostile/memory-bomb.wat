;; Grows its linear memory 1 MiB at a time until the memory limit refuses, then traps.
;; With `resources.limits.memory` the container ends OOMKilled (exit code 137).
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $grow
      (br_if $grow
        (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
