"""Draws ``occupancy_frame.png``, the grid-frame figure of ``docs/occupancy.md``.

Run ``.venv/bin/python docs/figures/occupancy_frame.py`` (Pillow; DejaVu Sans when installed).
"""

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).with_suffix(".png")
S = 2  # supersampling
W, H = 1060, 520
img = Image.new("RGB", (W*S, H*S), "white")
d = ImageDraw.Draw(img, "RGBA")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def font(size, bold=False):
    try:
        return ImageFont.truetype(BOLD if bold else FONT, size * S)
    except OSError:
        return ImageFont.load_default(size * S)
def P(x, y): return (x*S, y*S)
def hexc(c, a=255):
    c = c.lstrip("#"); return tuple(int(c[i:i+2], 16) for i in (0, 2, 4)) + (a,)
def line(x1,y1,x2,y2,col="#222222",w=2,dash=None,arrow=False):
    if dash:
        L = math.hypot(x2-x1, y2-y1); on, off = dash; t = 0
        while t < L:
            t1 = min(t+on, L)
            a, b = P(x1 + (x2 - x1) * t / L, y1 + (y2 - y1) * t / L), P(x1 + (x2 - x1) * t1 / L, y1 + (y2 - y1) * t1 / L)
            d.line([a, b], fill=hexc(col), width=int(w * S))
            t = t1 + off
    else:
        d.line([P(x1,y1), P(x2,y2)], fill=hexc(col), width=int(w*S))
    if arrow:
        a = math.atan2(y2-y1, x2-x1); L = 11; sp = 0.4
        pts = [(x2, y2), (x2 - L * math.cos(a - sp), y2 - L * math.sin(a - sp)),
               (x2 - L * math.cos(a + sp), y2 - L * math.sin(a + sp))]
        d.polygon([P(*p) for p in pts], fill=hexc(col))
def text(x,y,s,size=13,col="#222222",bold=False,anchor="ls"):
    d.text(P(x,y), s, font=font(size,bold), fill=hexc(col), anchor=anchor)
def poly(pts, fill=None, col="#222222", w=2):
    d.polygon([P(*p) for p in pts], fill=hexc(fill[0], fill[1]) if fill else None, outline=None)
    if col:
        q = list(pts) + [pts[0]]
        for a, b in zip(q[:-1], q[1:]): line(*a, *b, col=col, w=w)
def rect(x0,y0,x1,y1, fill=None, col="#222222", w=2): poly([(x0,y0),(x1,y0),(x1,y1),(x0,y1)], fill, col, w)

BLUE, RED, GREEN, GREY, ORANGE, BROWN = "#2e5cb8", "#c0392b", "#1e8449", "#666666", "#b35c00", "#5b4a32"
# ---------------- top view
cx, cy = 250, 245
yaw = math.radians(30)
text(20, 30, "Top view: the grid turns with the heading (yaw) only", 15, bold=True)
half = 120  # px for 40 m
def rot(u, v):
    x = u*math.cos(yaw) - v*math.sin(yaw); y = u*math.sin(yaw) + v*math.cos(yaw)
    return cx + x, cy - y
corners = [rot(-half,-half), rot(half,-half), rot(half,half), rot(-half,half)]
poly(corners, fill=("#dfe8f7", 200), col=None)
for k in range(-3, 4):
    line(*rot(k*30, -half), *rot(k*30, half), col="#9fb4de", w=1)
    line(*rot(-half, k*30), *rot(half, k*30), col="#9fb4de", w=1)
poly(corners, col=BLUE, w=2)
ox, oy = 30, 440
line(ox, oy, ox+70, oy, arrow=True); text(ox+78, oy+4, "x east", 13)
line(ox, oy, ox, oy-70, arrow=True); text(ox+6, oy-72, "y north", 13)
text(ox+8, oy-10, "world (local ENU)", 11, col=GREY)
poly([rot(26, 0), rot(-16, 15), rot(-8, 0), rot(-16, -15)], fill=("#888888", 255), col="#444444", w=1)
line(cx, cy, cx+150, cy, col=GREY, w=1.5, dash=(6, 4))
r = 62
d.arc([P(cx-r, cy-r), P(cx+r, cy+r)], start=-30, end=0, fill=hexc(GREY), width=int(1.5*S))
text(cx+r+6, cy-8, "yaw", 13, col=GREY)
line(cx, cy, *rot(100, 0), col=RED, w=3, arrow=True)
x, y = rot(106, 0); text(x+4, y+2, "x forward", 14, col=RED, bold=True)
line(cx, cy, *rot(0, 100), col=GREEN, w=3, arrow=True)
x, y = rot(0, 106); text(x-8, y-4, "y left", 14, col=GREEN, bold=True, anchor="rs")
text(cx-14, cy+30, "vehicle at (x, y)", 12, anchor="rs")
x, y = rot(-half, -half)
text(x-30, y+26, "x, y ∈ [−40, 40] m (both presets)", 12, col=BLUE)
text(x-30, y+42, "200 × 200 voxels of 0.4 m", 12, col=BLUE)

# ---------------- side view
X0 = 540
text(X0, 30, "Side view: a level grid, z up from the ground", 15, bold=True)
gy, zs = 405, 2.2
gx0, gx1 = X0 + 20, X0 + 360
top, bot = gy - 149.25*zs, gy + 2*zs
rect(gx0, top, gx1, bot, fill=("#dfe8f7", 200), col=None)
for k in range(0, 122, 8):
    y = gy - (-2 + 1.25*k)*zs; line(gx0, y, gx1, y, col="#9fb4de", w=1)
rect(gx0, top, gx1, bot, col=BLUE, w=2)
for bx, bw, bh in ((X0+45, 40, 60), (X0+100, 35, 120), (X0+255, 50, 85), (X0+315, 25, 35)):
    rect(bx, gy-bh*zs, bx+bw, gy, fill=("#c9c3b8", 255), col="#6d6458", w=1.5)
oy0, oy1 = gy - 5.4*zs, gy + 1*zs
rect(gx0, oy0, gx1, oy1, fill=("#f5b041", 190), col=ORANGE, w=1.5)
line(X0, gy, X0+380, gy, col=BROWN, w=3)
text(X0+2, gy+18, "ground", 12, col=BROWN)
dx, dz = X0 + 200, 100
dy = gy - dz*zs
pitch = math.radians(-14)
def prot(u, v):
    return dx + u*math.cos(pitch) - v*math.sin(pitch), dy - (u*math.sin(pitch) + v*math.cos(pitch))
poly([prot(-16, -3), prot(16, -3), prot(16, 3), prot(-16, 3)], fill=("#333333", 255), col="#333333", w=1)
line(*prot(-22, 6), *prot(-10, 6), w=2); line(*prot(10, 6), *prot(22, 6), w=2)
text(dx + 28, dy - 8, "drone, pitched:", 12)
text(dx + 28, dy + 8, "the grid stays level", 12)
line(dx, dy + 10, dx, gy, col=GREY, w=1.5, dash=(6, 4))
text(dx + 6, gy - 150, "its height above the", 12, col=GREY)
text(dx + 6, gy - 134, "ground moves nothing", 12, col=GREY)
line(dx, gy, dx, gy - 70, col=BLUE, w=3, arrow=True)
text(dx - 6, gy - 74, "z up", 14, col=BLUE, bold=True, anchor="rs")
line(dx, gy, dx + 80, gy, col=RED, w=3, arrow=True)
text(dx + 44, gy + 18, "x forward", 13, col=RED, bold=True)
d.ellipse([P(dx-4, gy-4), P(dx+4, gy+4)], fill=hexc(BLUE))
text(dx - 8, gy + 18, "z = 0 at ground_z", 12, col=BLUE, anchor="rs")
bx = gx1 + 14
line(bx, top, bx, bot, col=BLUE, w=2)
line(bx - 5, top, bx + 5, top, col=BLUE, w=2)
line(bx - 5, bot, bx + 5, bot, col=BLUE, w=2)
text(bx + 8, top + 16, "aerial:", 12, col=BLUE, bold=True)
text(bx + 8, top + 32, "z ∈ [−2, 149.25] m", 12, col=BLUE)
text(bx + 8, top + 48, "121 × 1.25 m", 12, col=BLUE)
text(bx + 8, gy - 34, "occ3d:", 12, col=ORANGE, bold=True)
text(bx + 8, gy - 18, "z ∈ [−1, 5.4] m", 12, col=ORANGE)
text(bx + 8, gy - 2, "16 × 0.4 m", 12, col=ORANGE)
text(20, H - 34, "voxel (i, j, k) centre, grid frame:  p_grid = point_cloud_range[:3] + (index + 0.5) · voxel_size",
     13, col="#333333")
text(20, H - 12, "to the world:  p_world = R_z(yaw) · p_grid + (x, y, ground_z) = T_world_grid · p_grid"
     "   (T_world_grid is stored in every frame file)", 13, col="#333333")
img = img.resize((W, H), Image.LANCZOS)
img.save(OUT, optimize=True)
