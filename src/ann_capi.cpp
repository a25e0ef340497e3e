/*
** ann_capi.cpp -- the subset of FAISS's C API that plumb uses, for FAISS
** builds that ship the C API headers without the compiled wrappers
** (Debian's libfaiss-dev 1.7.3).
**
** What: definitions of exactly the functions src/ann.c calls, with the
** declarations taken from the headers in faiss/c_api: a definition whose
** signature differs from its extern "C" declaration does not compile, so
** the engine's C code is written against the real C API. CMake compiles
** this file only when a test program calling faiss_IndexFlatIP_new does
** not link against the installed FAISS (this is the only C++ in plumb).
** Invariant: no C++ exception crosses into C. Each function returns 0, or
** -2 (FAISS exception), -4 (standard exception), -1 (other), and keeps the
** exception for faiss_get_last_error(), per thread, as FAISS's own
** wrappers do (error_impl.h, macros_impl.h); unlike FAISS's debug build
** it never prints.
** Workload: index construction, search and I/O calls, each doing far more
** work than the wrapper.
*/
#include <faiss/AutoTune.h>
#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <exception>
#include <stdexcept>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/error_impl.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

thread_local std::exception_ptr faiss_last_exception;

#define TRY try {
#define CATCH                                                                 \
    }                                                                         \
    catch (faiss::FaissException & e) {                                       \
        faiss_last_exception = std::make_exception_ptr(e);                    \
        return -2;                                                            \
    }                                                                         \
    catch (std::exception & e) {                                              \
        faiss_last_exception = std::make_exception_ptr(e);                    \
        return -4;                                                            \
    }                                                                         \
    catch (...) {                                                             \
        faiss_last_exception = std::make_exception_ptr(std::runtime_error("Unknown error")); \
        return -1;                                                            \
    }                                                                         \
    return 0;

static faiss::Index *ix(FaissIndex *p) { return reinterpret_cast<faiss::Index *>(p); }
static const faiss::Index *ix(const FaissIndex *p) {
    return reinterpret_cast<const faiss::Index *>(p);
}

extern "C" {

const char *faiss_get_last_error() {
    if (faiss_last_exception) {
        try {
            std::rethrow_exception(faiss_last_exception);
        } catch (std::exception &e) {
            return e.what();
        } catch (...) {
            return "Unknown error";
        }
    }
    return nullptr;
}

void faiss_Index_free(FaissIndex *obj) { delete ix(obj); }
int faiss_Index_d(const FaissIndex *obj) { return ix(obj)->d; }
int faiss_Index_is_trained(const FaissIndex *obj) { return ix(obj)->is_trained; }
idx_t faiss_Index_ntotal(const FaissIndex *obj) { return ix(obj)->ntotal; }
FaissMetricType faiss_Index_metric_type(const FaissIndex *obj) {
    return static_cast<FaissMetricType>(ix(obj)->metric_type);
}

int faiss_Index_train(FaissIndex *index, idx_t n, const float *x) {
    TRY ix(index)->train(n, x);
    CATCH
}

int faiss_Index_add(FaissIndex *index, idx_t n, const float *x) {
    TRY ix(index)->add(n, x);
    CATCH
}

int faiss_Index_add_with_ids(FaissIndex *index, idx_t n, const float *x, const idx_t *xids) {
    TRY ix(index)->add_with_ids(n, x, xids);
    CATCH
}

int faiss_Index_search(const FaissIndex *index, idx_t n, const float *x, idx_t k,
                       float *distances, idx_t *labels) {
    TRY ix(index)->search(n, x, k, distances, labels);
    CATCH
}

int faiss_Index_reset(FaissIndex *index) {
    TRY ix(index)->reset();
    CATCH
}

int faiss_IndexFlatIP_new_with(FaissIndexFlatIP **p_index, idx_t d) {
    TRY *p_index = reinterpret_cast<FaissIndexFlatIP *>(new faiss::IndexFlatIP(d));
    CATCH
}

int faiss_index_factory(FaissIndex **p_index, int d, const char *description,
                        FaissMetricType metric) {
    TRY *p_index = reinterpret_cast<FaissIndex *>(
        faiss::index_factory(d, description, static_cast<faiss::MetricType>(metric)));
    CATCH
}

int faiss_write_index_fname(const FaissIndex *idx, const char *fname) {
    TRY faiss::write_index(ix(idx), fname);
    CATCH
}

int faiss_read_index_fname(const char *fname, int io_flags, FaissIndex **p_out) {
    TRY *p_out = reinterpret_cast<FaissIndex *>(faiss::read_index(fname, io_flags));
    CATCH
}

int faiss_ParameterSpace_new(FaissParameterSpace **space) {
    TRY *space = reinterpret_cast<FaissParameterSpace *>(new faiss::ParameterSpace());
    CATCH
}

void faiss_ParameterSpace_free(FaissParameterSpace *obj) {
    delete reinterpret_cast<faiss::ParameterSpace *>(obj);
}

int faiss_ParameterSpace_set_index_parameter(const FaissParameterSpace *space,
                                             FaissIndex *cindex, const char *name,
                                             double value) {
    TRY reinterpret_cast<const faiss::ParameterSpace *>(space)->set_index_parameter(
        ix(cindex), name, value);
    CATCH
}

} /* extern "C" */
