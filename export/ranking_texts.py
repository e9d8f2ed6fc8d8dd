# ruff: noqa: RUF001  (Chinese, Japanese and Cyrillic punctuation and letters are the point)
"""The fixed text set the exporter's ranking check embeds: sentences, paragraphs and documents longer
than one longformer-base attention window (512 tokens), in several languages, with code and numbers.

Some texts say the same thing in other words or languages, so a trained model has real neighbours to
find; the rest cover scripts and registers a quantized graph must also keep apart. Written for this
check (no downloaded corpus); order and content are part of the recorded figures, so edit with care.
"""

from __future__ import annotations

SENTENCES = (
    "The cat is sleeping on the warm windowsill in the afternoon sun.",
    "A cat naps on the sunny window ledge after lunch.",
    "Die Katze schläft am Nachmittag auf der warmen Fensterbank.",
    "The central bank raised interest rates by half a percentage point on Wednesday.",
    "On Wednesday the central bank lifted its key rate by 0.5 percentage points.",
    "Le train pour Lyon part à 8 h 15 du quai numéro trois ; il a dix minutes de retard.",
    "¿Dónde está la biblioteca más cercana? Tengo que devolver dos libros antes del viernes.",
    "今天天气很好，我们下午去公园散步，然后在湖边喝茶。",
    "東京駅から新幹線に乗ると、大阪までは約二時間半かかります。",
    "Москва — столица России, и зимой там бывает очень холодно и снежно.",
    "تقدم القهوة العربية عادة مع التمر للضيوف في المناسبات العائلية.",
    "Invoice 2024-0173: 3 x 12.50 EUR = 37.50 EUR; VAT 19% = 7.13 EUR; total due 44.63 EUR by 2025-03-31.",
    "def add(a: int, b: int) -> int:\n    return a + b",
)

PARAGRAPHS = (
    (
        "Astronomers have measured the light of a supernova that exploded more than ten billion years "
        "ago. Because the universe has expanded since then, the light arrived stretched into the "
        "infrared, and the telescope had to collect it for several nights before the spectrum was "
        "clear enough to show the signatures of silicon, sulphur and calcium. The team hopes that "
        "such distant explosions will tell them whether dark energy has changed over cosmic time."
    ),
    (
        "Die Energiewende stellt die Stromnetze vor neue Aufgaben. Wind- und Solarparks liefern "
        "nicht gleichmäßig, sondern je nach Wetter, und die großen Anlagen stehen oft weit entfernt "
        "von den Städten und Fabriken, die den Strom brauchen. Deshalb werden neue Leitungen von "
        "Norden nach Süden gebaut, Speicher erprobt und Verbraucher ermutigt, ihren Bedarf in "
        "windreiche Stunden zu verlegen."
    ),
    (
        "Pour réussir une ratatouille, il faut cuire chaque légume séparément : les aubergines, les "
        "courgettes, les poivrons et les oignons n'ont pas besoin du même temps. On les réunit "
        "ensuite dans une cocotte avec les tomates, l'ail, le thym et un filet d'huile d'olive, puis "
        "on laisse mijoter doucement pendant une heure. Le plat est encore meilleur le lendemain."
    ),
    (
        "El equipo local ganó la final del campeonato por dos goles a uno después de ir perdiendo "
        "durante casi toda la primera parte. El entrenador cambió el sistema en el descanso, dio "
        "entrada a dos delanteros jóvenes y, a falta de diez minutos, un cabezazo tras un saque de "
        "esquina empató el partido. El gol de la victoria llegó en el tiempo añadido."
    ),
    (
        "造纸术是中国古代的四大发明之一。东汉时期，蔡伦改进了造纸的方法，用树皮、麻头、破布和旧渔网"
        "作为原料，使纸张变得便宜而且容易书写。后来这种技术经过中亚传到阿拉伯世界，又在中世纪传入欧洲，"
        "对知识的保存和传播产生了深远的影响。"
    ),
    (
        "日本には四つのはっきりした季節があります。春には桜が咲き、人々は公園で花見をします。夏は"
        "蒸し暑く、各地で花火大会や祭りが開かれます。秋になると山の木々が赤や黄色に色づき、冬には北の"
        "地方で雪が多く降ります。季節ごとの食べ物も楽しみの一つです。"
    ),
    (
        "Роман «Война и мир» Льва Толстого охватывает события с 1805 по 1820 год. В нём переплетаются "
        "судьбы нескольких дворянских семей и история войны с Наполеоном. Толстой описывает не только "
        "сражения и придворные интриги, но и повседневную жизнь, сомнения и надежды своих героев, "
        "поэтому книгу до сих пор читают во всём мире."
    ),
    (
        "تغطي الصحراء الكبرى مساحة واسعة من شمال أفريقيا، وتصل درجات الحرارة فيها نهارا في الصيف إلى "
        "أكثر من خمس وأربعين درجة، بينما تنخفض ليلا انخفاضا كبيرا. ورغم قسوة المناخ تعيش فيها قبائل "
        "تنتقل مع قطعانها بين الواحات، وتعتمد على الآبار القديمة وعلى معرفتها الدقيقة بالطرق والنجوم."
    ),
    (
        "SELECT c.name, COUNT(o.id) AS orders, SUM(o.amount) AS revenue\n"
        "FROM customers AS c\n"
        "JOIN orders AS o ON o.customer_id = c.id\n"
        "WHERE o.created_at >= '2024-01-01' AND o.status IN ('paid', 'shipped')\n"
        "GROUP BY c.name\n"
        "HAVING SUM(o.amount) > 1000\n"
        "ORDER BY revenue DESC\n"
        "LIMIT 20;"
    ),
    (
        "station,date,min_c,max_c,rain_mm\n"
        "Oslo,2024-07-01,12.4,21.8,0.0\n"
        "Oslo,2024-07-02,13.1,19.6,4.2\n"
        "Madrid,2024-07-01,21.7,36.9,0.0\n"
        "Madrid,2024-07-02,22.3,38.1,0.0\n"
        "Mumbai,2024-07-01,26.0,30.4,87.5\n"
        "Mumbai,2024-07-02,25.8,29.9,112.3"
    ),
)

LONG_TEXTS = (
    (
        "The first public railway to carry passengers behind a steam locomotive opened in the north of "
        "England in 1825. It was built to move coal from the mines to the river, and the passengers "
        "were almost an afterthought: a single carriage, crowded with curious people, was attached to "
        "the wagons on the opening day. Within twenty years the picture had changed completely. Lines "
        "spread from city to city, companies competed for the same routes, and investors poured money "
        "into schemes that were sometimes sound and sometimes pure speculation. When the bubble burst, "
        "many shareholders lost their savings, yet the tracks that had been laid stayed in use, and the "
        "country was left with a network that no single planner would have dared to propose. "
        "The railway changed the way people thought about time. Before it, every town kept its own "
        "local time, set by the sun, and a traveller moving west would find the church clocks a few "
        "minutes behind those at home. Timetables made this confusion impossible to live with, and the "
        "companies adopted a single standard time, which the law later made official for everyone. "
        "Clocks on station platforms became the most trusted clocks in town. "
        "It also changed what people ate and read. Fresh fish reached inland markets the morning after "
        "it was landed, milk travelled overnight from the farms to the cities, and newspapers printed in "
        "the capital were sold in distant towns on the day they appeared. Seaside resorts grew up at the "
        "end of branch lines, and factory workers could, for the first time, afford a day by the sea. "
        "Engineers faced problems nobody had solved before. Locomotives needed gentle gradients, so "
        "hills were cut through and valleys crossed on long viaducts of brick and stone. Tunnels were "
        "dug by hand, with candles and gunpowder, and many workers died in accidents and floods. Iron "
        "bridges were tested by running heavy trains across them while the designers watched for cracks. "
        "Signalling began with men waving flags and lamps and ended, decades later, with interlocked "
        "levers that made it mechanically impossible to set two conflicting routes at once. "
        "By the end of the century railways crossed continents. In North America they opened the "
        "interior to settlement and trade, with consequences that were disastrous for the peoples who "
        "already lived there. In India they moved grain and soldiers and, in time, millions of "
        "ordinary travellers. Today high-speed trains run at more than three hundred kilometres an hour "
        "on dedicated lines, while freight trains kilometres long still carry coal, ore and containers, "
        "much as the first line carried coal two centuries ago. "
        "Historians still argue about how much the railways mattered to economic growth. Some have "
        "calculated that canals and roads could have carried most of the goods at a modest extra cost, "
        "so that the railway added only a few per cent to national income. Others answer that such "
        "sums miss the point: the railway created markets, industries and habits that would not have "
        "existed without it, from the mass production of steel to the daily commute, and those changes "
        "cannot be measured by comparing freight rates alone."
    ),
    (
        "Der Wald ist in Mitteleuropa kaum noch ein natürlicher Ort. Fast überall wurde er über "
        "Jahrhunderte genutzt, gerodet und wieder aufgeforstet. Im achtzehnten Jahrhundert war Holz so "
        "knapp geworden, dass ein sächsischer Beamter forderte, man dürfe nur so viel schlagen, wie "
        "nachwachse; aus diesem Gedanken entstand der Begriff der Nachhaltigkeit. In der Folge pflanzte "
        "man vor allem Fichten und Kiefern, weil sie schnell wachsen und gerades Holz liefern. Diese "
        "Monokulturen prägen bis heute viele Landschaften, von den Mittelgebirgen bis in die Ebenen des "
        "Nordens. "
        "Doch die Fichte stammt eigentlich aus kühleren und feuchteren Lagen. In den trockenen und heißen "
        "Sommern der vergangenen Jahre hat sie stark gelitten, und der Borkenkäfer konnte sich in den "
        "geschwächten Beständen massenhaft vermehren. Ganze Hänge sind inzwischen kahl, und die Förster "
        "stehen vor der Frage, welche Bäume sie dort pflanzen sollen, die auch in fünfzig oder hundert "
        "Jahren noch gedeihen. Manche setzen auf Buchen und Eichen, andere auf Arten aus wärmeren "
        "Regionen wie die Douglasie oder die Esskastanie, wieder andere lassen die Flächen zunächst in "
        "Ruhe und beobachten, was von selbst wächst. "
        "Der Wald ist dabei nicht nur Holzlieferant. Er speichert Wasser und Kohlenstoff, kühlt die "
        "Umgebung, schützt Böden vor Erosion und bietet unzähligen Tieren, Pilzen und Pflanzen einen "
        "Lebensraum. Für viele Menschen ist er außerdem ein Ort der Erholung, an dem man wandert, Pilze "
        "sammelt oder einfach still sitzt. Diese Aufgaben miteinander zu verbinden, ist schwierig, denn "
        "was dem einen Ziel dient, kann dem anderen schaden: Totholz ist gut für Käfer und Spechte, "
        "aber ein Risiko an Wegen, und ein naturnaher Mischwald bringt kurzfristig weniger Ertrag. "
        "Fachleute sind sich deshalb einig, dass es keine einfache Lösung gibt. Der Umbau der Wälder "
        "wird Jahrzehnte dauern und viel Geld kosten, und seine Ergebnisse werden erst die Enkel der "
        "heutigen Förster sehen."
    ),
    (
        "from __future__ import annotations\n\n"
        "import csv\n"
        "import statistics\n"
        "from dataclasses import dataclass\n"
        "from pathlib import Path\n\n\n"
        "@dataclass(frozen=True)\n"
        "class Reading:\n"
        "    station: str\n"
        "    date: str\n"
        "    min_c: float\n"
        "    max_c: float\n"
        "    rain_mm: float\n\n\n"
        "def load_readings(path: Path) -> list[Reading]:\n"
        '    """Read a CSV of daily weather readings; skip rows with missing values."""\n'
        "    readings = []\n"
        '    with path.open(newline="", encoding="utf-8") as handle:\n'
        "        for row in csv.DictReader(handle):\n"
        "            try:\n"
        "                readings.append(\n"
        "                    Reading(\n"
        '                        station=row["station"],\n'
        '                        date=row["date"],\n'
        '                        min_c=float(row["min_c"]),\n'
        '                        max_c=float(row["max_c"]),\n'
        '                        rain_mm=float(row["rain_mm"]),\n'
        "                    )\n"
        "                )\n"
        "            except (KeyError, ValueError):\n"
        "                continue\n"
        "    return readings\n\n\n"
        "def summarize(readings: list[Reading]) -> dict[str, dict[str, float]]:\n"
        '    """Mean temperature range and total rain per station."""\n'
        "    by_station: dict[str, list[Reading]] = {}\n"
        "    for reading in readings:\n"
        "        by_station.setdefault(reading.station, []).append(reading)\n"
        "    summary = {}\n"
        "    for station, rows in sorted(by_station.items()):\n"
        "        summary[station] = {\n"
        '            "days": len(rows),\n'
        '            "mean_range_c": statistics.fmean(r.max_c - r.min_c for r in rows),\n'
        '            "total_rain_mm": sum(r.rain_mm for r in rows),\n'
        '            "hottest_c": max(r.max_c for r in rows),\n'
        "        }\n"
        "    return summary\n\n\n"
        "def wettest_station(summary: dict[str, dict[str, float]]) -> str | None:\n"
        '    """The station with the most rain, or None for an empty summary."""\n'
        "    if not summary:\n"
        "        return None\n"
        '    return max(summary, key=lambda name: summary[name]["total_rain_mm"])\n\n\n'
        'if __name__ == "__main__":\n'
        "    import sys\n\n"
        "    table = summarize(load_readings(Path(sys.argv[1])))\n"
        "    for name, figures in table.items():\n"
        "        print(f\"{name:<12} {figures['days']:>4} {figures['mean_range_c']:>6.1f}\")\n"
        '    print("wettest:", wettest_station(table))\n'
    ),
    (
        "Minutes of the budget committee, meeting of 14 March 2025, 10:00-12:30, room 4.07. Present: "
        "the chair, the treasurer, four members and two guests from the finance office; apologies from "
        "one member. Item 1: the minutes of the meeting of 12 February were approved without changes. "
        "Item 2: the treasurer presented the figures for the fourth quarter. Income was 1,284,500 EUR, "
        "3.2% above the forecast of 1,244,700 EUR, mainly because membership fees rose from 412,000 to "
        "455,300 EUR. Spending was 1,198,250 EUR against a budget of 1,230,000 EUR; the largest saving, "
        "about 21,000 EUR, came from energy costs after the new heating system was installed in "
        "November. The year therefore closed with a surplus of 86,250 EUR, compared with a deficit of "
        "17,900 EUR the year before. Item 3: the committee discussed how to use the surplus. The "
        "treasurer proposed to put 50,000 EUR into the reserve fund, which would then stand at "
        "310,000 EUR, or roughly three months of running costs. One member asked whether part of the "
        "money could instead pay for the repair of the roof of the east wing, estimated at 64,000 to "
        "72,000 EUR depending on the material chosen. After a long discussion the committee agreed, "
        "with five votes in favour, one against and one abstention, to place 30,000 EUR in the reserve "
        "and 56,250 EUR in a fund for building repairs, and to ask for two further quotes for the roof "
        "before the next meeting. Item 4: the draft budget for 2026 foresees income of 5.31 million EUR "
        "and spending of 5.27 million EUR. Staff costs rise by 4.5% because of the new collective "
        "agreement; rent stays at 38,400 EUR a month until the lease ends on 30 June 2027. The guests "
        "from the finance office warned that interest income, 61,000 EUR in 2024, may fall by a third "
        "if rates continue to drop. Item 5: any other business. The chair thanked the treasurer, who "
        "will step down in September after nine years in office, and reminded members that proposals "
        "for the annual meeting must reach the secretary by 15 April. The meeting closed at 12:25. "
        "Next meeting: 9 May 2025 at 10:00 in the same room. Annex A lists the quarterly figures: "
        "Q1 income 1,201,300 EUR, spending 1,187,600 EUR; Q2 income 1,256,900 EUR, spending "
        "1,240,150 EUR; Q3 income 1,190,400 EUR, spending 1,221,800 EUR; Q4 income 1,284,500 EUR, "
        "spending 1,198,250 EUR. Annex B lists the three quotes received so far for the roof: "
        "64,000 EUR (clay tiles, 12 weeks), 68,500 EUR (slate, 16 weeks) and 72,000 EUR (slate with "
        "new insulation, 18 weeks); each includes scaffolding and a ten-year guarantee."
    ),
)

RANKING_TEXTS: tuple[str, ...] = SENTENCES + PARAGRAPHS + LONG_TEXTS
