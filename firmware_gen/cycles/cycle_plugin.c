/*
 * cycle_plugin.c - a QEMU TCG plugin (qemu-system-arm 7.2, plugin API version 1) that
 * estimates Cortex-M cycles while the guest runs: each translated instruction is decoded
 * from its bytes (cycle_model.c) and an inline add of its cost is attached to it; a
 * conditional branch that closes a block records itself when it is reached, and its taken
 * penalty is added when the next block executed does not start at its fall-through address.
 *
 * The guest marks points of interest by loading one byte at markbase + id from the function
 * [marklo, markhi) (board_cycle_mark in boards/common/board.c): each such load writes
 * "M <id> <cycles so far>" to the output file; the exit writes "END <cycles>".
 * Options: core=m3|m4|m55, out=<file>, marklo=<hex>, markhi=<hex>, markbase=<hex>.
 *
 * QEMU ships no plugin header with its binaries; the few declarations below are this
 * project's own, written from QEMU's documented plugin API.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cycle_model.h"

/* ---- the QEMU plugin API used here (own declarations) ------------------------------ */
typedef uint64_t qemu_plugin_id_t;
typedef uint32_t qemu_plugin_meminfo_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_info_t;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS = 0 };
/* Debian's 7.2 delivered no callback for loads registered as reads only (1); read+write
 * (3) works, and the marking function does nothing but load. */
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_RW = 3 };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 = 0 };

typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*vcpu_udata_cb)(unsigned int vcpu_index, void *userdata);
typedef void (*vcpu_mem_cb)(unsigned int vcpu_index, qemu_plugin_meminfo_t info,
                            uint64_t vaddr, void *userdata);
typedef void (*udata_cb)(qemu_plugin_id_t id, void *userdata);

extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
extern void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, vcpu_udata_cb cb,
                                                 enum qemu_plugin_cb_flags flags, void *userdata);
extern void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, vcpu_udata_cb cb,
                                                   enum qemu_plugin_cb_flags flags, void *userdata);
extern void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                       enum qemu_plugin_op op, void *ptr,
                                                       uint64_t imm);
extern void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, vcpu_mem_cb cb,
                                             enum qemu_plugin_cb_flags flags,
                                             enum qemu_plugin_mem_rw rw, void *userdata);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb cb, void *userdata);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
                                                        size_t idx);
extern const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
extern size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
extern uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
extern void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* ---- state (the boards here have one vCPU) ------------------------------------------ */
struct block_end {
    uint64_t fall_through;  /* address after the block's last instruction */
    uint32_t taken_extra;   /* > 0: the block ends with a conditional branch */
};

static uint64_t cycles;
static const struct block_end *pending;   /* a block-closing conditional branch just reached */

static int core = CM_CORE_M4;
static uint64_t mark_lo, mark_hi, mark_base;
static FILE *out;

static void mark_load(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr,
                      void *userdata)
{
    (void)vcpu;
    (void)info;
    (void)userdata;
    if (out && vaddr >= mark_base && vaddr - mark_base < 0x10000u) {
        fprintf(out, "M %u %llu\n", (unsigned)(vaddr - mark_base), (unsigned long long)cycles);
        fflush(out);
    }
}

struct start {
    uint64_t vaddr;
    struct block_end end;
};

static void block_exec_check(unsigned int vcpu, void *userdata)
{
    const struct start *s = userdata;
    (void)vcpu;
    if (pending) {
        if (s->vaddr != pending->fall_through) {
            cycles += pending->taken_extra;
        }
        pending = NULL;
    }
}

/* Runs when a block's closing conditional branch is reached (not when a device access or an
 * exception left the block before it): the next block decides whether it was taken. */
static void branch_reached(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    pending = userdata;
}

static uint32_t halfword(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static void block_translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    const size_t n = qemu_plugin_tb_n_insns(tb);
    struct start *s = calloc(1, sizeof *s);
    if (!s || n == 0) {
        free(s);
        return;
    }
    struct cm_state st = {CM_NONE, 0};
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const uint8_t *data = qemu_plugin_insn_data(insn);
        const size_t size = qemu_plugin_insn_size(insn);
        const uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        const uint32_t hw1 = size >= 2 ? halfword(data) : 0u;
        const uint32_t hw2 = size >= 4 ? halfword(data + 2) : 0u;
        struct cm_insn c;
        cm_classify(hw1, hw2, core, &st, &c);
        cm_advance(&st, hw1, &c);
        if (i == 0) {
            s->vaddr = vaddr;
        }
        if (c.cycles) {
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                       &cycles, c.cycles);
        }
        if (vaddr >= mark_lo && vaddr < mark_hi) {
            qemu_plugin_register_vcpu_mem_cb(insn, mark_load, QEMU_PLUGIN_CB_NO_REGS,
                                             QEMU_PLUGIN_MEM_RW, NULL);
        }
        if (i == n - 1) {
            s->end.fall_through = vaddr + size;
            s->end.taken_extra = c.cls == CM_COND_BRANCH ? c.taken_extra : 0u;
            if (s->end.taken_extra) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, branch_reached, QEMU_PLUGIN_CB_NO_REGS,
                                                       &s->end);
            }
        }
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, block_exec_check, QEMU_PLUGIN_CB_NO_REGS, s);
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    if (out) {
        fprintf(out, "END %llu\n", (unsigned long long)cycles);
        fclose(out);
        out = NULL;
    }
}

static int option(const char *arg, const char *name, const char **value)
{
    const size_t len = strlen(name);
    if (strncmp(arg, name, len) == 0 && arg[len] == '=') {
        *value = arg + len + 1;
        return 1;
    }
    return 0;
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info, int argc,
                        char **argv)
{
    (void)info;
    const char *path = NULL, *v;
    for (int i = 0; i < argc; i++) {
        if (option(argv[i], "core", &v)) {
            core = strcmp(v, "m3") == 0 ? CM_CORE_M3 : strcmp(v, "m55") == 0 ? CM_CORE_M55
                 : strcmp(v, "m4") == 0 ? CM_CORE_M4 : -1;
            if (core < 0) {
                qemu_plugin_outs("cycle plugin: core must be m3, m4 or m55\n");
                return -1;
            }
        } else if (option(argv[i], "out", &v)) {
            path = v;
        } else if (option(argv[i], "marklo", &v)) {
            mark_lo = strtoull(v, NULL, 16);
        } else if (option(argv[i], "markhi", &v)) {
            mark_hi = strtoull(v, NULL, 16);
        } else if (option(argv[i], "markbase", &v)) {
            mark_base = strtoull(v, NULL, 16);
        } else {
            qemu_plugin_outs("cycle plugin: unknown option\n");
            return -1;
        }
    }
    if (path) {
        out = fopen(path, "w");
        if (!out) {
            qemu_plugin_outs("cycle plugin: cannot write the output file\n");
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, block_translated);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
