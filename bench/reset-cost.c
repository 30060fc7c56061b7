/*
 * What resetting one pooled linear memory costs on this kernel, the two ways Wasmtime's pooling
 * allocator can do it once an instance is dropped (docs/TUNING.md, session 23):
 *
 *   scan:   ask the kernel for the pages the instance wrote (the PAGEMAP_SCAN ioctl, Linux 6.7+,
 *           with the arguments Wasmtime 48 passes: written, present, not the zero page, not
 *           file-backed; at most 32 regions, at most keep-resident / 4 KiB pages), then zero
 *           only those pages;
 *   memset: zero the whole kept-resident prefix of the memory, written or not.
 *
 * A memory of SIZE_KIB, of which WRITTEN pages (spread out, so each is its own region) are
 * written before every reset, as a small guest writes its stack and a few heap pages. A plain
 * system call (getppid) is timed beside them: the floor of any ioctl.
 *
 *   cc -O2 -o /tmp/reset-cost bench/reset-cost.c && /tmp/reset-cost 128 4
 *
 * Not part of bench/run.sh: a probe of one kernel cost, for reading Boson's profiles.
 */
#include <fcntl.h>
#include <linux/ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* The PAGEMAP_SCAN interface (include/uapi/linux/fs.h, Linux 6.7), declared here because
 * Debian 12's kernel headers predate it. */
struct page_region {
    uint64_t start, end, categories;
};
struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted,
        category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_PFNZERO (1 << 5)

#define PAGE 4096
#define KEEP_RESIDENT (1 << 20) /* boson up's default --pool-keep-resident */
#define MAX_REGIONS 32
#define ROUNDS 200000

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* Every third page, so no two written pages are adjacent. */
static void write_pages(volatile char *memory, int written) {
    for (int i = 0; i < written; i++)
        memory[(size_t)i * 3 * PAGE] = 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SIZE_KIB WRITTEN_PAGES\n", argv[0]);
        return 2;
    }
    size_t len = (size_t)atol(argv[1]) * 1024 / PAGE * PAGE;
    int written = atoi(argv[2]);
    size_t pages = len / PAGE;
    if (written < 1 || (size_t)written * 3 > pages) {
        fprintf(stderr, "WRITTEN_PAGES: 1 to a third of the memory's pages (each its own region)\n");
        return 2;
    }
    char *memory = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int pagemap = open("/proc/self/pagemap", O_RDONLY);
    if (memory == MAP_FAILED || pagemap < 0) {
        perror("mmap or /proc/self/pagemap");
        return 1;
    }
    size_t keep = len < KEEP_RESIDENT ? len : KEEP_RESIDENT;

    struct page_region regions[MAX_REGIONS];
    long found = 0;
    double start = now_ns();
    for (int round = 0; round < ROUNDS; round++) {
        write_pages(memory, written);
        uint64_t categories = PAGE_IS_PFNZERO | PAGE_IS_FILE | PAGE_IS_WRITTEN | PAGE_IS_PRESENT;
        struct pm_scan_arg scan = {
            .size = sizeof scan,
            .start = (uintptr_t)memory,
            .end = (uintptr_t)memory + len,
            .vec = (uintptr_t)regions,
            .vec_len = MAX_REGIONS,
            .max_pages = keep / PAGE,
            .category_inverted = PAGE_IS_PFNZERO | PAGE_IS_FILE,
            .category_mask = categories,
            .return_mask = categories,
        };
        int n = ioctl(pagemap, PAGEMAP_SCAN, &scan);
        if (n < 0) {
            perror("PAGEMAP_SCAN (Linux 6.7+)");
            return 1;
        }
        found += n;
        for (int r = 0; r < n; r++)
            memset((void *)(uintptr_t)regions[r].start, 0, regions[r].end - regions[r].start);
    }
    double scan_ns = (now_ns() - start) / ROUNDS;

    start = now_ns();
    for (int round = 0; round < ROUNDS; round++) {
        write_pages(memory, written);
        memset(memory, 0, keep);
        __asm__ volatile("" : : "r"(memory) : "memory");
    }
    double memset_ns = (now_ns() - start) / ROUNDS;

    start = now_ns();
    for (int round = 0; round < ROUNDS; round++)
        getppid();
    double syscall_ns = (now_ns() - start) / ROUNDS;

    printf("%zu KiB, %d pages written: scan + zero written %.0f ns (%.1f regions found), "
           "memset kept-resident %.0f ns, getppid %.0f ns\n",
           len / 1024, written, scan_ns, (double)found / ROUNDS, memset_ns, syscall_ns);
    return 0;
}
