/*
 * cycle_sequence.S - hand-written instruction sequences with known cycle counts for
 * tests/test_cycles.py. cycle_empty marks two points back to back; cycle_sequence marks the
 * same two points around the sequence below. The difference of the plugin's two stretches is
 * the sequence's cost, which the test compares with the sum from the timing table.
 */
    .syntax unified
    .thumb
    .text

    .global cycle_empty
    .type cycle_empty, %function
    .thumb_func
cycle_empty:
    push {r4-r11, lr}
    movw r0, #4095              @ BOARD_MARK_BEGIN
    bl board_cycle_mark
    movw r0, #1
    bl board_cycle_mark
    pop {r4-r11, pc}

    .global cycle_sequence
    .type cycle_sequence, %function
    .thumb_func
cycle_sequence:
    push {r4-r11, lr}
    ldr r8, =cycle_buffer
    movw r0, #4095              @ BOARD_MARK_BEGIN
    bl board_cycle_mark
    ldm r8, {r0-r3}             @ LDM, 4 registers
    ldrd r4, r5, [r8, #16]      @ LDRD
    ldr r6, [r8]                @ load after LDRD: not pipelined
    ldr r7, [r8, #4]            @ load after a load: pipelined
    str r6, [r8, #24]           @ store after a load: pipelined
    str r7, [r8, #28]           @ store after a store: not pipelined
    movs r2, #10
    movs r3, #0
1:
#if defined(__ARM_FEATURE_DSP)
    smlad r3, r0, r1, r3        @ dual 16-bit multiply-accumulate
#else
    mla r3, r0, r1, r3          @ (Cortex-M3: no DSP extension)
#endif
    subs r2, #1
    bne 1b                      @ taken 9 times, then not taken
    cmp r2, #0
    bne 2f                      @ not taken
    movs r4, #100
    movs r5, #7
    sdiv r6, r4, r5
    udiv r6, r4, r5
    mul r6, r4, r5
    smull r6, r7, r4, r5
    b 3f                        @ unconditional
2:
    nop
3:
    cbz r2, 4f                  @ taken
    nop
4:
    cmp r2, #0
    it eq
    moveq r4, #1
    push {r0-r3}
    pop {r0-r3}
    movw r0, #1
    bl board_cycle_mark
    pop {r4-r11, pc}
    .ltorg

    .data
    .align 3
cycle_buffer:
    .word 1, 2, 3, 4, 5, 6, 7, 8
