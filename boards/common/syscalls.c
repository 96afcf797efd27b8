/*
 * The few operating-system hooks newlib needs, so printf, malloc and C++ static
 * constructors work without --specs=nosys.specs: stdout/stderr go to the board UART,
 * stdin reads from it, the heap runs from the end of .bss to the end of RAM.
 * With --gc-sections none of this ends up in an image that does not use it.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

#include "board.h"

extern uint8_t __heap_start[], __heap_end[];

/* Called by __libc_init_array / __libc_fini_array; without crti.o there is nothing to do. */
void _init(void)
{
}

void _fini(void)
{
}

int _write(int fd, const char *buf, int len)
{
    (void)fd;
    board_write(buf, (size_t)len);
    return len;
}

int _read(int fd, char *buf, int len)
{
    (void)fd;
    if (len <= 0) {
        return 0;
    }
    buf[0] = (char)board_getc(); /* one byte at a time, so a line-less protocol works */
    return 1;
}

void *_sbrk(intptr_t increment)
{
    static uint8_t *brk = __heap_start;
    if (increment > __heap_end - brk || brk + increment < __heap_start) {
        errno = ENOMEM;
        return (void *)-1;
    }
    uint8_t *previous = brk;
    brk += increment;
    return previous;
}

int _close(int fd)
{
    (void)fd;
    return -1;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    (void)fd;
    return 1;
}

int _lseek(int fd, int offset, int whence)
{
    (void)fd;
    (void)offset;
    (void)whence;
    return 0;
}

int _getpid(void)
{
    return 1;
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

__attribute__((noreturn)) void _exit(int code)
{
    board_exit(code);
}
