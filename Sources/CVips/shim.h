#ifndef ASSETD_CVIPS_SHIM_H
#define ASSETD_CVIPS_SHIM_H
#include <string.h>
#include <vips/vips.h>

/* What Swift cannot call: the VIPS_INIT macro and the variadic operations, wrapped with
 * exactly the options assetd uses. Each returns 0 on success, as libvips does. */

static inline int assetd_vips_init(const char *argv0) {
    return VIPS_INIT(argv0);
}

/* The header only: a lazy, sequential open that decodes no pixels. */
static inline VipsImage *assetd_vips_open_header(const char *filename) {
    return vips_image_new_from_file(filename, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
}

/* The loader libvips would pick for a file ("jpegload"), honouring blocked operations;
 * NULL when none would (unknown or blocked format). */
static inline const char *assetd_vips_loader_nickname(const char *filename) {
    const char *name = vips_foreign_find_load(filename);
    if (!name) return NULL;
    return vips_nickname_find(g_type_from_name(name));
}

/* vips_thumbnail: the longest edge `size`, never upscaled, EXIF auto-rotation (the
 * default), shrink-on-load, failing on decode errors rather than guessing.
 * `export_srgb`: colour-manage to sRGB through lcms (the embedded profile in, sRGB out;
 * a CMYK image without a profile gets libvips' fallback CMYK profile). The caller asks for
 * it only when the image has an ICC profile or is CMYK: for the rest (no profile, so sRGB
 * by assumption) the transform changes no pixel, yet lcms built it for every image, about
 * a quarter of a task (BENCHMARKS.md). Without it, libvips converts to sRGB by formula. */
static inline int assetd_vips_thumbnail(const char *filename, VipsImage **out, int size, int export_srgb) {
    if (export_srgb)
        return vips_thumbnail(filename, out, size,
                              "height", size,
                              "size", VIPS_SIZE_DOWN,
                              "export_profile", "srgb",
                              "fail_on", VIPS_FAIL_ON_ERROR,
                              NULL);
    return vips_thumbnail(filename, out, size,
                          "height", size,
                          "size", VIPS_SIZE_DOWN,
                          "fail_on", VIPS_FAIL_ON_ERROR,
                          NULL);
}

/* Whether the header carries an ICC profile. */
static inline int assetd_vips_has_icc_profile(VipsImage *image) {
    return vips_image_get_typeof(image, VIPS_META_ICC_NAME) != 0;
}

/* Alpha flattened onto white, for JPEG. */
static inline int assetd_vips_flatten_white(VipsImage *in, VipsImage **out) {
    VipsArrayDouble *white = vips_array_double_newv(3, 255.0, 255.0, 255.0);
    int result = vips_flatten(in, out, "background", white, NULL);
    vips_area_unref(VIPS_AREA(white));
    return result;
}

/* To 8-bit sRGB (a 16-bit PNG, a greyscale image) so that JPEG takes it. */
static inline int assetd_vips_to_srgb8(VipsImage *in, VipsImage **out) {
    VipsImage *srgb = NULL;
    if (vips_colourspace(in, &srgb, VIPS_INTERPRETATION_sRGB, NULL)) return -1;
    int result = vips_cast(srgb, out, VIPS_FORMAT_UCHAR, NULL);
    g_object_unref(srgb);
    return result;
}

/* JPEG into memory at `quality`, every metadata block stripped, progressive off. */
static inline int assetd_vips_jpegsave(VipsImage *in, void **buffer, size_t *length, int quality) {
    return vips_jpegsave_buffer(in, buffer, length, "Q", quality, "strip", TRUE, "optimize_coding", TRUE, NULL);
}

/* GLib log messages of libvips' domain ("VIPS": its own warnings, and libtiff's, libjpeg's
 * and others' that it passes on) go to `forward` instead of raw "VIPS-WARNING **" lines on
 * standard error: both the classic g_log path (g_log_set_handler) and the structured one
 * (the writer function, for code built with G_LOG_USE_STRUCTURED). Other domains keep
 * GLib's default writer. No state lives here: `forward` travels as the user data. */
typedef void (*assetd_vips_log_fn)(int level, const char *message);

static inline void assetd_vips_log_handler(const gchar *domain, GLogLevelFlags level, const gchar *message,
                                           gpointer forward) {
    (void)domain;
    ((assetd_vips_log_fn)forward)((int)(level & G_LOG_LEVEL_MASK), message ? message : "");
}

static inline GLogWriterOutput assetd_vips_log_writer(GLogLevelFlags level, const GLogField *fields, gsize count,
                                                      gpointer forward) {
    const char *domain = NULL, *message = NULL;
    for (gsize i = 0; i < count; i++) {
        if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0) domain = fields[i].value;
        else if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0) message = fields[i].value;
    }
    if (domain && strcmp(domain, "VIPS") == 0) {
        ((assetd_vips_log_fn)forward)((int)(level & G_LOG_LEVEL_MASK), message ? message : "");
        return G_LOG_WRITER_HANDLED;
    }
    return g_log_writer_default(level, fields, count, NULL);
}

/* Once per process (g_log_set_writer_func may be called only once). */
static inline void assetd_vips_route_logging(assetd_vips_log_fn forward) {
    g_log_set_handler("VIPS", (GLogLevelFlags)(G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION),
                      assetd_vips_log_handler, (gpointer)forward);
    g_log_set_writer_func(assetd_vips_log_writer, (gpointer)forward, NULL);
}

static inline void assetd_vips_unref(VipsImage *image) {
    if (image) g_object_unref(image);
}

#endif
