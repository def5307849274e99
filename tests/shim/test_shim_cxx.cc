// C++ operator new and delete under the shim: every replaceable form lands
// in the shim, on the backend, with the asked alignment; failures call the
// new_handler and throw std::bad_alloc (nothrow forms: nullptr).
#include <kalloc.h>

#include <check.h>
#include <dlfcn.h>
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace {

kalloc_t *backend() { return kalloc_default(); }

bool aligned(const void *p, std::size_t a)
{
	return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0;
}

// The block is the backend's (or the shim's own mapping) and usable.
void check_block(void *p, std::size_t n, std::size_t align)
{
	ck_assert_ptr_nonnull(p);
	ck_assert_msg(aligned(p, align), "%p not aligned to %zu", p, align);
	ck_assert_uint_ge(malloc_usable_size(p), n);
	std::memset(p, 0x6b, n ? n : 1);
}

void check_from_shim(const char *symbol)
{
	void *sym = dlsym(RTLD_DEFAULT, symbol);
	ck_assert_msg(sym, "%s not found", symbol);
	Dl_info info;
	ck_assert_int_ne(dladdr(sym, &info), 0);
	ck_assert_msg(std::strstr(info.dli_fname, "libkalloc-shim"),
		      "%s comes from %s", symbol, info.dli_fname);
}

} // namespace

START_TEST(every_form_comes_from_the_shim)
{
	const char *forms[] = {
		"_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
		"_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
		"_ZnwmSt11align_val_tRKSt9nothrow_t",
		"_ZnamSt11align_val_tRKSt9nothrow_t",
		"_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
		"_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
		"_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
		"_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
		"_ZdlPvSt11align_val_tRKSt9nothrow_t",
		"_ZdaPvSt11align_val_tRKSt9nothrow_t",
	};
	for (const char *f : forms)
		check_from_shim(f);
}
END_TEST

START_TEST(plain_and_array_forms)
{
	for (std::size_t n : { 0ul, 1ul, 24ul, 1000ul, 100000ul, 5ul << 20 }) {
		void *p = ::operator new(n);
		check_block(p, n, 16);
		ck_assert_int_ne(kalloc_owns(backend(), p), 0);
		ck_assert_uint_eq(kalloc_usable_size(backend(), p),
				  malloc_usable_size(p));
		::operator delete(p);

		p = ::operator new[](n);
		check_block(p, n, 16);
		::operator delete[](p);

		p = ::operator new(n, std::nothrow);
		check_block(p, n, 16);
		::operator delete(p, std::nothrow);

		p = ::operator new[](n, std::nothrow);
		check_block(p, n, 16);
		::operator delete[](p, std::nothrow);

		p = ::operator new(n); // sized delete: the size asked
		check_block(p, n, 16);
		::operator delete(p, n);

		p = ::operator new[](n);
		check_block(p, n, 16);
		::operator delete[](p, n);
	}
	void *a = ::operator new(0), *b = ::operator new(0);
	ck_assert_ptr_ne(a, b); // new(0): unique blocks
	::operator delete(a, std::size_t(0));
	::operator delete(b);
}
END_TEST

START_TEST(aligned_forms)
{
	for (std::size_t al = 1; al <= (std::size_t(4) << 20); al *= 4) {
		std::align_val_t av{ al };
		std::size_t n = al + 3;
		void *p = ::operator new(n, av);
		check_block(p, n, al);
		::operator delete(p, av);

		p = ::operator new[](n, av);
		check_block(p, n, al);
		::operator delete[](p, av);

		p = ::operator new(n, av, std::nothrow);
		check_block(p, n, al);
		::operator delete(p, av, std::nothrow);

		p = ::operator new[](n, av, std::nothrow);
		check_block(p, n, al);
		::operator delete[](p, av, std::nothrow);

		p = ::operator new(n, av);
		check_block(p, n, al);
		::operator delete(p, n, av);

		p = ::operator new[](n, av);
		check_block(p, n, al);
		::operator delete[](p, n, av);
	}
}
END_TEST

namespace {
struct alignas(256) Wide {
	unsigned char bytes[300];
};
} // namespace

START_TEST(new_expressions_and_containers)
{
	Wide *w = new Wide;
	ck_assert(aligned(w, 256));
	w->bytes[299] = 1;
	delete w;
	Wide *ws = new Wide[7];
	for (int i = 0; i < 7; i++)
		ck_assert(aligned(&ws[i], 256));
	delete[] ws;

	std::vector<std::string> v;
	std::map<int, std::string> m;
	for (int i = 0; i < 20000; i++) {
		v.push_back(std::string(std::size_t(i % 97 + 20), char('a' + i % 26)));
		m[i % 5000] = v.back();
	}
	std::size_t total = 0, expect = 0;
	for (auto &s : v)
		total += s.size();
	for (int i = 0; i < 20000; i++)
		expect += std::size_t(i % 97 + 20);
	ck_assert_uint_eq(total, expect);
	ck_assert(v[12345] == std::string(12345 % 97 + 20, char('a' + 12345 % 26)));
	ck_assert_uint_eq(m.size(), 5000);
	auto sp = std::make_shared<std::vector<int>>(100000, 7);
	ck_assert_int_eq((*sp)[99999], 7);
}
END_TEST

namespace {
int handler_calls;
void handler_gives_up()
{
	handler_calls++;
	std::set_new_handler(nullptr); // next failure throws
}
void handler_retries()
{
	handler_calls++; // the injected failure is spent: the retry succeeds
}
} // namespace

START_TEST(failure_throws_bad_alloc)
{
	const std::size_t huge = SIZE_MAX / 2;
	bool thrown = false;
	try {
		void *p = ::operator new(huge);
		::operator delete(p);
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	ck_assert(thrown);

	thrown = false;
	try {
		void *p = ::operator new[](huge, std::align_val_t(64));
		::operator delete[](p, std::align_val_t(64));
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	ck_assert(thrown);

	ck_assert_ptr_null(::operator new(huge, std::nothrow));
	ck_assert_ptr_null(::operator new[](huge, std::nothrow));
	ck_assert_ptr_null(::operator new(huge, std::align_val_t(4096), std::nothrow));

	// The backend's own failure (injected): same contract.
	kalloc_fail_nth(1);
	thrown = false;
	try {
		void *p = ::operator new(100);
		::operator delete(p);
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	ck_assert(thrown);
}
END_TEST

START_TEST(new_handler_is_called)
{
	handler_calls = 0;
	std::set_new_handler(handler_gives_up);
	bool thrown = false;
	try {
		void *p = ::operator new(SIZE_MAX / 2);
		::operator delete(p);
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	ck_assert(thrown);
	ck_assert_int_eq(handler_calls, 1);

	// A handler that makes room: the retry succeeds, nothing is thrown.
	handler_calls = 0;
	std::set_new_handler(handler_retries);
	kalloc_fail_nth(1);
	void *p = ::operator new(1000);
	check_block(p, 1000, 16);
	::operator delete(p);
	ck_assert_int_eq(handler_calls, 1);

	handler_calls = 0;
	kalloc_fail_nth(1);
	p = ::operator new(1000, std::nothrow);
	check_block(p, 1000, 16);
	::operator delete(p);
	ck_assert_int_eq(handler_calls, 1);
	std::set_new_handler(nullptr);
}
END_TEST

namespace {
std::atomic<int> destroyed{0};

// A thread_local whose destructor runs at thread exit, after the thread's
// last use of the shim: it frees 500 blocks from there.
struct PerThread {
	std::vector<std::string> v;
	~PerThread() { destroyed++; }
};
thread_local PerThread per_thread;

long long live_blocks()
{
	kalloc_stats_t st;
	ck_assert_msg(kalloc_stats(backend(), &st) == KALLOC_OK,
		      "no statistics (the test runs with KALLOC_STATS=1): %s",
		      kalloc_errmsg());
	return st.live_blocks;
}
} // namespace

START_TEST(thread_local_destructors_free)
{
	long long before = live_blocks();
	for (int round = 0; round < 20; round++) {
		std::vector<std::thread> ts;
		for (int t = 0; t < 4; t++)
			ts.emplace_back([] {
				for (int i = 0; i < 500; i++)
					per_thread.v.emplace_back(200, 'x');
			});
		for (auto &t : ts)
			t.join();
	}
	std::thread quiet([] {}); // a thread that never allocates
	quiet.join();
	ck_assert_int_eq(destroyed.load(), 80);
	// The 40,000 strings freed by the destructors reached the backend.
	// The runtime keeps a few blocks once per process (4 here: glibc's
	// and libstdc++'s thread bookkeeping), not one per thread.
	long long after = live_blocks();
	ck_assert_msg(after < before + 20, "%lld blocks live before, %lld after "
		      "80 threads freed theirs at exit", before, after);
}
END_TEST

int main()
{
	Suite *s = suite_create("shim-c++");
	TCase *tc = tcase_create("new-delete");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, every_form_comes_from_the_shim);
	tcase_add_test(tc, plain_and_array_forms);
	tcase_add_test(tc, aligned_forms);
	tcase_add_test(tc, new_expressions_and_containers);
	tcase_add_test(tc, failure_throws_bad_alloc);
	tcase_add_test(tc, new_handler_is_called);
	tcase_add_test(tc, thread_local_destructors_free);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
