"""The golden lines' table (tests/audit/test_golden_lines.py, whose docstring says what each
entry pins and how to print the entries after an intended change); test_round_trip and
test_schema read the same lines.
"""
from __future__ import annotations

# (scenario, kind, n) -> (stream, the n-th line of that kind the scenario writes, its
# production.log line); every line of a kind the table names is pinned, so a duplicate fails too
EXPECTED: dict[tuple[str, str, int], tuple[str, bytes, bytes]] = {
    ('cycle_rejected_order', 'order_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"order_error",'
        b'"symbol":"QQQ","side":"buy","quantity":81.666666666,'
        b'"error":"Insufficient buying power",'
        b'"order_data":{"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy",'
        b'"symbol":"QQQ","side":"buy","quantity":81.666666666,"order_type":"market",'
        b'"limit_price":null,"reference_price":400.0,"model":"EqualWeightModel_v1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"},"model":"EqualWeightModel_v1",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR order_error: buy 81.6667 QQQ [EqualWeight'
        b'Model_v1] tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy: Insufficient buying p'
        b'ower\n'),
    ('cycle_late_rejection', 'order_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"order_error",'
        b'"symbol":"TLT","side":"buy","quantity":362.962962962,'
        b'"error":"rejected by the broker after it accepted the order: halted: trading sus'
        b'pended in TLT",'
        b'"order_data":{"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy",'
        b'"symbol":"TLT","side":"buy","quantity":362.962962962,"order_type":"market",'
        b'"limit_price":null,"reference_price":90.0,"model":"EqualWeightModel_v1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"},"model":"EqualWeightModel_v1",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR order_error: buy 362.963 TLT [EqualWeight'
        b'Model_v1] tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy: rejected by the broke'
        b'r after it accepted the order: halted: trading suspended in TLT\n'),
    ('cycle_bad_price', 'price_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"price_error",'
        b'"error":"no usable price for QQQ: no quote since 14:59",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00","symbol":"QQQ"}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR price_error: no usable price for QQQ: no '
        b'quote since 14:59\n'),
    ('cycle_bad_price', 'price_error', 2): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"price_error",'
        b'"error":"bad price for TLT: nan","cycle_timestamp":"2025-03-03T15:00:00+00:00",'
        b'"symbol":"TLT","price":null}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR price_error: bad price for TLT: nan\n'),
    ('cycle_broken_model', 'model_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"model_error",'
        b'"error":"BrokenModel_v1 failed: ZeroDivisionError(\'division by zero\')",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00","model":"BrokenModel_v1"}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR model_error: BrokenModel_v1 failed: ZeroD'
        b"ivisionError('division by zero')\n"),
    ('cycle_kill_switch', 'kill_switch_engaged', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00",'
        b'"event_type":"kill_switch_engaged",'
        b'"message":"no new orders: kill-switch file data/KILL_SWITCH exists (delete it to'
        b' resume trading)","cycle_timestamp":"2025-03-03T15:00:00+00:00",'
        b'"blocked_orders":3}\n',
        b'2025-03-03T15:00:00.000000+00:00 WARN  kill_switch_engaged: no new orders: kill-'
        b'switch file data/KILL_SWITCH exists (delete it to resume trading)\n'),
    ('cycle_risk_off_held', 'risk_off_held', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"risk_off_held",'
        b'"message":"SectorRotationModel_v1: risk-off (SPY 4.5% below its 10-day average) '
        b'but TLT has no closes: the current holdings stay,'
        b' sectors included (v1\'s hold rule)",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00","model":"SectorRotationModel_v1",'
        b'"trend_symbol":"SPY","defensive_symbol":"TLT"}\n',
        b'2025-03-03T15:15:00.000000+00:00 WARN  risk_off_held: SectorRotationModel_v1: ri'
        b'sk-off (SPY 4.5% below its 10-day average) but TLT has no closes: the current ho'
        b"ldings stay, sectors included (v1's hold rule)\n"),
    ('cycle_order_not_placed', 'order_not_placed', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"order_not_placed",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy never reached the bro'
        b'ker; the plan is made again",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  order_not_placed: tb-20250303T150000Z-Equ'
        b'alWeightModel_v1-SPY-buy never reached the broker; the plan is made again\n'),
    ('cycle_order_not_placed', 'order_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"order_error",'
        b'"symbol":"SPY","side":"buy","quantity":65.333333333,'
        b'"error":"ConnectionError: connection reset",'
        b'"order_data":{"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy",'
        b'"symbol":"SPY","side":"buy","quantity":65.333333333,"order_type":"market",'
        b'"limit_price":null,"reference_price":500.0,"model":"EqualWeightModel_v1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"},"model":"EqualWeightModel_v1",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR order_error: buy 65.3333 SPY [EqualWeight'
        b'Model_v1] tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy: ConnectionError: conn'
        b'ection reset\n'),
    ('cycle_open_at_deadline', 'order_open_at_deadline', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:05.000000+00:00",'
        b'"event_type":"order_open_at_deadline",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy is still new after 5s'
        b': its fills are recorded at the next cycle",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy","status":"new",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:05.000000+00:00 WARN  order_open_at_deadline: tb-20250303T15000'
        b'0Z-EqualWeightModel_v1-QQQ-buy is still new after 5s: its fills are recorded at '
        b'the next cycle\n'),
    ('cycle_open_at_deadline', 'order_open_at_deadline', 2): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:05.000000+00:00",'
        b'"event_type":"order_open_at_deadline",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy is still new after 5s'
        b': its fills are recorded at the next cycle",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy","status":"new",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:05.000000+00:00 WARN  order_open_at_deadline: tb-20250303T15000'
        b'0Z-EqualWeightModel_v1-SPY-buy is still new after 5s: its fills are recorded at '
        b'the next cycle\n'),
    ('cycle_open_at_deadline', 'order_open_at_deadline', 3): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:05.000000+00:00",'
        b'"event_type":"order_open_at_deadline",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy is still new after 5s'
        b': its fills are recorded at the next cycle",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy","status":"new",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:05.000000+00:00 WARN  order_open_at_deadline: tb-20250303T15000'
        b'0Z-EqualWeightModel_v1-TLT-buy is still new after 5s: its fills are recorded at '
        b'the next cycle\n'),
    ('cycle_open_at_deadline', 'order_open_at_deadline', 4): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:10.000000+00:00",'
        b'"event_type":"order_open_at_deadline",'
        b'"message":"tb-20250303T151500Z-EqualWeightModel_v1-QQQ-buy is still new after 5s'
        b': its fills are recorded at the next cycle",'
        b'"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-QQQ-buy","status":"new",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"}\n',
        b'2025-03-03T15:15:10.000000+00:00 WARN  order_open_at_deadline: tb-20250303T15150'
        b'0Z-EqualWeightModel_v1-QQQ-buy is still new after 5s: its fills are recorded at '
        b'the next cycle\n'),
    ('cycle_open_at_deadline', 'order_open_at_deadline', 5): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:10.000000+00:00",'
        b'"event_type":"order_open_at_deadline",'
        b'"message":"tb-20250303T151500Z-EqualWeightModel_v1-SPY-buy is still new after 5s'
        b': its fills are recorded at the next cycle",'
        b'"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-SPY-buy","status":"new",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"}\n',
        b'2025-03-03T15:15:10.000000+00:00 WARN  order_open_at_deadline: tb-20250303T15150'
        b'0Z-EqualWeightModel_v1-SPY-buy is still new after 5s: its fills are recorded at '
        b'the next cycle\n'),
    ('cycle_open_at_deadline', 'order_open_at_deadline', 6): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:10.000000+00:00",'
        b'"event_type":"order_open_at_deadline",'
        b'"message":"tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy is still new after 5s'
        b': its fills are recorded at the next cycle",'
        b'"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy","status":"new",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"}\n',
        b'2025-03-03T15:15:10.000000+00:00 WARN  order_open_at_deadline: tb-20250303T15150'
        b'0Z-EqualWeightModel_v1-TLT-buy is still new after 5s: its fills are recorded at '
        b'the next cycle\n'),
    ('cycle_open_at_deadline', 'order_canceled', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:05.000000+00:00","event_type":"order_canceled",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy was still open at the'
        b' next cycle: the rest of it is cancelled before planning again",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:05.000000+00:00 WARN  order_canceled: tb-20250303T150000Z-Equal'
        b'WeightModel_v1-QQQ-buy was still open at the next cycle: the rest of it is cance'
        b'lled before planning again\n'),
    ('cycle_open_at_deadline', 'order_canceled', 2): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:05.000000+00:00","event_type":"order_canceled",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy was still open at the'
        b' next cycle: the rest of it is cancelled before planning again",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:05.000000+00:00 WARN  order_canceled: tb-20250303T150000Z-Equal'
        b'WeightModel_v1-SPY-buy was still open at the next cycle: the rest of it is cance'
        b'lled before planning again\n'),
    ('cycle_open_at_deadline', 'order_canceled', 3): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:05.000000+00:00","event_type":"order_canceled",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy was still open at the'
        b' next cycle: the rest of it is cancelled before planning again",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:05.000000+00:00 WARN  order_canceled: tb-20250303T150000Z-Equal'
        b'WeightModel_v1-TLT-buy was still open at the next cycle: the rest of it is cance'
        b'lled before planning again\n'),
    ('cycle_order_skipped', 'order_skipped', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"order_skipped",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy was already sent for '
        b'this slot","order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 WARN  order_skipped: tb-20250303T150000Z-EqualW'
        b'eightModel_v1-SPY-buy was already sent for this slot\n'),
    ('cycle_reconciliation', 'reconciliation', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"reconciliation",'
        b'"message":"broker and trail differ: SPY: trail 5,'
        b' broker 0; adopted: our books now match the broker",'
        b'"positions":{"SPY":{"trail":5.0,"broker":0.0}},"unknown_open_orders":[],'
        b'"policy":"adopt","cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 WARN  reconciliation: broker and trail differ: '
        b'SPY: trail 5, broker 0; adopted: our books now match the broker\n'),
    ('runner_cycle_error', 'cycle_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"cycle_error",'
        b'"error":"RuntimeError: account endpoint said 418",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR cycle_error: RuntimeError: account endpoi'
        b'nt said 418\n'),
    ('runner_broker_unavailable', 'broker_unavailable', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00",'
        b'"event_type":"broker_unavailable",'
        b'"error":"the broker cannot be reached at start-up (connection refused); trying a'
        b'gain in 5s","attempt":1,"retry_in_seconds":5.0}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR broker_unavailable: the broker cannot be '
        b'reached at start-up (connection refused); trying again in 5s\n'),
    ('runner_manual_cycle', 'manual_cycle', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:07:12.345678+00:00","event_type":"manual_cycle",'
        b'"message":"the latest scheduled slot already ran: manual cycle at 2025-03-03T15:'
        b'07:12+00:00","cycle_timestamp":"2025-03-03T15:07:12+00:00"}\n',
        b'2025-03-03T15:07:12.345678+00:00 INFO  manual_cycle: the latest scheduled slot a'
        b'lready ran: manual cycle at 2025-03-03T15:07:12+00:00\n'),
    ('runner_manual_cycle_market_closed', 'cycle_skipped', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-08T15:00:00.000000+00:00","event_type":"cycle_skipped",'
        b'"message":"market closed (NYSE regular hours): nothing sent; next slot 2025-03-1'
        b'0T13:30:00+00:00","reason":"market_closed",'
        b'"next_slot":"2025-03-10T13:30:00+00:00","policy":"skip"}\n',
        b'2025-03-08T15:00:00.000000+00:00 INFO  cycle_skipped: market closed (NYSE regula'
        b'r hours): nothing sent; next slot 2025-03-10T13:30:00+00:00\n'),
    ('runner_closed_market_skipped', 'cycle_skipped', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-07T20:50:00.000000+00:00","event_type":"cycle_skipped",'
        b'"message":"market closed (NYSE regular hours): slots from 2025-03-07T21:00:00+00'
        b':00 are skipped; next cycle at 2025-03-10T13:30:00+00:00",'
        b'"reason":"market_closed","from_slot":"2025-03-07T21:00:00+00:00",'
        b'"next_slot":"2025-03-10T13:30:00+00:00","policy":"skip"}\n',
        b'2025-03-07T20:50:00.000000+00:00 INFO  cycle_skipped: market closed (NYSE regula'
        b'r hours): slots from 2025-03-07T21:00:00+00:00 are skipped; next cycle at 2025-0'
        b'3-10T13:30:00+00:00\n'),
    ('runner_slot_missed', 'slot_missed', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:07:00.000000+00:00","event_type":"slot_missed",'
        b'"message":"4 slot(s) missed while stopped (last completed 2025-03-03T14:00:00+00'
        b':00, latest due 2025-03-03T15:00:00+00:00); BOT_MISSED_SLOT=skip: skipping it",'
        b'"missed":4,"last_completed":"2025-03-03T14:00:00+00:00",'
        b'"latest_due":"2025-03-03T15:00:00+00:00","policy":"skip"}\n',
        b'2025-03-03T15:07:00.000000+00:00 WARN  slot_missed: 4 slot(s) missed while stopp'
        b'ed (last completed 2025-03-03T14:00:00+00:00,'
        b' latest due 2025-03-03T15:00:00+00:00); BOT_MISSED_SLOT=skip: skipping it\n'),
    ('runner_slot_resumed', 'slot_resumed', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:07:00.000000+00:00","event_type":"slot_resumed",'
        b'"message":"the cycle for 2025-03-03T15:00:00+00:00 was interrupted: resuming it"'
        b',"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:07:00.000000+00:00 WARN  slot_resumed: the cycle for 2025-03-03T15'
        b':00:00+00:00 was interrupted: resuming it\n'),
    ('runner_clock_step', 'clock_step', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T16:07:30.250000+00:00","event_type":"clock_step",'
        b'"message":"the system clock stepped forward by 3629 s (from about 2025-03-03T15:'
        b'07:01.500000+00:00 to 2025-03-03T16:07:30.250000+00:00): scheduling from the rea'
        b'l time again","offset_seconds":3628.75,'
        b'"expected":"2025-03-03T15:07:01.500000+00:00",'
        b'"clock":"2025-03-03T16:07:30.250000+00:00"}\n',
        b'2025-03-03T16:07:30.250000+00:00 WARN  clock_step: the system clock stepped forw'
        b'ard by 3629 s (from about 2025-03-03T15:07:01.500000+00:00 to 2025-03-03T16:07:3'
        b'0.250000+00:00): scheduling from the real time again\n'),
    ('run_start_and_stop', 'audit_key_generated', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000250+00:00",'
        b'"event_type":"audit_key_generated",'
        b'"message":"no BOT_AUDIT_KEY or BOT_AUDIT_KEY_FILE: an audit key was generated in'
        b' <TMP>/data/audit.key; keep it,'
        b' and back it up apart from the logs: it verifies this trail",'
        b'"key_file":"<TMP>/data/audit.key"}\n',
        b'2025-03-03T15:00:00.000250+00:00 WARN  audit_key_generated: no BOT_AUDIT_KEY or '
        b'BOT_AUDIT_KEY_FILE: an audit key was generated in <TMP>/data/audit.key; keep it,'
        b' and back it up apart from the logs: it verifies this trail\n'),
    ('run_start_and_stop', 'bot_started', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000250+00:00","event_type":"bot_started",'
        b'"message":"tradebot 0.1.0 started (pid <PID>)","pid":<PID>,"command":"run",'
        b'"broker":"sim","schedule":"every 15 minutes","market_hours":"always",'
        b'"models":"SectorRotationModel_v1",'
        b'"settings_sha256":"3455e5e70f2eb328f206fd47cacb7db14caa66227a938d4aa54964464f334'
        b'cea","version":"0.1.0","run_id":"<RUN_ID>"}\n',
        b'2025-03-03T15:00:00.000250+00:00 INFO  bot_started: tradebot 0.1.0 started (pid '
        b'<PID>)\n'),
    ('run_start_and_stop', 'lock_refused', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000250+00:00","event_type":"lock_refused",'
        b'"message":"another tradebot (pid 4242) holds data/tradebot.lock","pid":<PID>,'
        b'"refused_at":"2025-03-03T15:00:00.000250+00:00"}\n',
        b'2025-03-03T15:00:00.000250+00:00 WARN  lock_refused: another tradebot (pid 4242)'
        b' holds data/tradebot.lock\n'),
    ('run_start_and_stop', 'inbox_error', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000250+00:00","event_type":"inbox_error",'
        b'"message":"unreadable note zz-unreadable.json","file":"zz-unreadable.json"}\n',
        b'2025-03-03T15:00:00.000250+00:00 WARN  inbox_error: unreadable note zz-unreadabl'
        b'e.json\n'),
    ('run_start_and_stop', 'bot_stopped', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000250+00:00","event_type":"bot_stopped",'
        b'"message":"tradebot stopped: SIGTERM","pid":<PID>,"reason":"SIGTERM"}\n',
        b'2025-03-03T15:00:00.000250+00:00 INFO  bot_stopped: tradebot stopped: SIGTERM\n'),
    ('self_verify_failed', 'trail_verify_failed', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00",'
        b'"event_type":"trail_verify_failed",'
        b'"message":"the live trail does not verify: trail ALTERED or incomplete: 1 invali'
        b'd, 6 valid: INVALID trades.jsonl segment 0 3 lines line 1: edited, deleted,'
        b' inserted or reordered (it differs from what was written); run `tradebot audit v'
        b'erify` to see every problem","problems":1,'
        b'"summary":"trail ALTERED or incomplete: 1 invalid, 6 valid"}\n',
        b'2025-03-03T15:00:00.000000+00:00 WARN  trail_verify_failed: the live trail does '
        b'not verify: trail ALTERED or incomplete: 1 invalid,'
        b' 6 valid: INVALID trades.jsonl segment 0 3 lines line 1: edited, deleted,'
        b' inserted or reordered (it differs from what was written); run `tradebot audit v'
        b'erify` to see every problem\n'),
    ('streams_torn_tail_and_damage', 'repair', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00","event_type":"repair",'
        b'"message":"orders.jsonl: torn last line (29 bytes) moved to orders.jsonl.torn-20'
        b'250303T150100Z; the file now ends at its last whole line","file":"orders.jsonl",'
        b'"moved_to":"orders.jsonl.torn-20250303T150100Z","bytes":29,"kept_bytes":1191}\n',
        b'2025-03-03T15:01:00.000000+00:00 WARN  repair: orders.jsonl: torn last line (29 '
        b'bytes) moved to orders.jsonl.torn-20250303T150100Z; the file now ends at its las'
        b't whole line\n'),
    ('streams_torn_tail_and_damage', 'damage', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00","event_type":"damage",'
        b'"message":"decisions.jsonl: damaged line(s) [2] inside the file (reported,'
        b' not changed)","file":"decisions.jsonl","lines":[2]}\n',
        b'2025-03-03T15:01:00.000000+00:00 WARN  damage: decisions.jsonl: damaged line(s) '
        b'[2] inside the file (reported, not changed)\n'),
    ('streams_rotated_and_truncated', 'rotation', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00","event_type":"rotation",'
        b'"message":"orders.jsonl was rotated while the bot was stopped: segment 0 sealed"'
        b',"file":"orders.jsonl"}\n',
        b'2025-03-03T15:01:00.000000+00:00 INFO  rotation: orders.jsonl was rotated while '
        b'the bot was stopped: segment 0 sealed\n'),
    ('streams_rotated_and_truncated', 'rotation', 2): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"rotation",'
        b'"message":"production.log was moved away (external rotation): segment 0 sealed,'
        b' writing a new production.log (mode 0600)","file":"production.log"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  rotation: production.log was moved away ('
        b'external rotation): segment 0 sealed, writing a new production.log (mode 0600)\n'),
    ('streams_rotated_and_truncated', 'integrity_warning', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00",'
        b'"event_type":"integrity_warning",'
        b'"message":"trades.jsonl differs from its last checkpoint from line 2 on: `tradeb'
        b'ot audit verify` will show where","file":"trades.jsonl"}\n',
        b'2025-03-03T15:01:00.000000+00:00 WARN  integrity_warning: trades.jsonl differs f'
        b'rom its last checkpoint from line 2 on: `tradebot audit verify` will show where\n'),
    ('streams_rotated_and_truncated', 'possible_loss', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"possible_loss",'
        b'"message":"performance.jsonl was truncated under the bot (copytruncate?): 345 by'
        b'tes were cut; lines written between the copy and the truncation may be lost",'
        b'"file":"performance.jsonl","bytes_cut":345}\n',
        b'2025-03-03T15:15:00.000000+00:00 WARN  possible_loss: performance.jsonl was trun'
        b'cated under the bot (copytruncate?): 345 bytes were cut; lines written between t'
        b'he copy and the truncation may be lost\n'),
    ('streams_write_lost', 'write_lost', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:20:00.000000+00:00","event_type":"write_lost",'
        b'"message":"events.jsonl:1 was about to be written when the bot stopped,'
        b' and was not (a crash, not tampering)","file":"events.jsonl","line":1,'
        b'"segment":0}\n',
        b'2025-03-03T15:20:00.000000+00:00 WARN  write_lost: events.jsonl:1 was about to b'
        b'e written when the bot stopped, and was not (a crash, not tampering)\n'),
    ('streams_anchor_created', 'anchor_created', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00","event_type":"anchor_created",'
        b'"message":"this trail predates anchors: trail <TRAIL_ID> and its anchor in data '
        b'were made, and the lines not yet signed were signed this once without evidence",'
        b'"trail_id":"<TRAIL_ID>","legacy":true}\n',
        b'2025-03-03T15:01:00.000000+00:00 WARN  anchor_created: this trail predates ancho'
        b'rs: trail <TRAIL_ID> and its anchor in data were made,'
        b' and the lines not yet signed were signed this once without evidence\n'),
    ('streams_anchor_lost', 'anchor_created', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00","event_type":"anchor_created",'
        b'"message":"trail <TRAIL_ID> had no anchor in data (a copy from another host?): o'
        b"ne was made; lines not signed before now cannot be shown to be the bot's and are"
        b' never signed","trail_id":"<TRAIL_ID>","legacy":false}\n',
        b'2025-03-03T15:01:00.000000+00:00 WARN  anchor_created: trail <TRAIL_ID> had no a'
        b'nchor in data (a copy from another host?): one was made; lines not signed before'
        b" now cannot be shown to be the bot's and are never signed\n"),
    ('runner_start_up_checks', 'reconciliation', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"reconciliation",'
        b'"message":"broker and trail differ: TLT: trail 2.5,'
        b' broker 0; adopted: our books now match the broker",'
        b'"positions":{"TLT":{"trail":2.5,"broker":0.0}},"unknown_open_orders":[],'
        b'"policy":"adopt"}\n',
        b'2025-03-03T15:00:00.000000+00:00 WARN  reconciliation: broker and trail differ: '
        b'TLT: trail 2.5, broker 0; adopted: our books now match the broker\n'),
    ('runner_start_up_checks', 'broker_unavailable', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00",'
        b'"event_type":"broker_unavailable",'
        b'"error":"the broker cannot be reached at start-up (HTTP 503 from the broker); no'
        b'thing traded, stopping","attempt":1,"retry_in_seconds":null}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR broker_unavailable: the broker cannot be '
        b'reached at start-up (HTTP 503 from the broker); nothing traded, stopping\n'),
    ('runner_slot_overrun', 'slot_missed', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:47:03.000000+00:00","event_type":"slot_missed",'
        b'"message":"2 slot(s) passed during the previous cycle; running 2025-03-03T15:45:'
        b'00+00:00","missed":2,"latest_due":"2025-03-03T15:45:00+00:00","policy":"run"}\n',
        b'2025-03-03T15:47:03.000000+00:00 WARN  slot_missed: 2 slot(s) passed during the '
        b'previous cycle; running 2025-03-03T15:45:00+00:00\n'),
    ('streams_forged_line', 'damage', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00","event_type":"damage",'
        b'"message":"errors.jsonl:1: no record of the bot writing it; never signed: the se'
        b'gment is sealed before it and errors.jsonl goes on in a new file",'
        b'"file":"errors.jsonl","lines":[1],"at":"errors.jsonl:1",'
        b'"reason":"no record of the bot writing it"}\n',
        b'2025-03-03T15:01:00.000000+00:00 WARN  damage: errors.jsonl:1: no record of the '
        b'bot writing it; never signed: the segment is sealed before it and errors.jsonl g'
        b'oes on in a new file\n'),
    ('recovery_order_sent_not_recorded', 'order_submitted', 1): (
        'orders.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"order_submitted",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy","symbol":"QQQ",'
        b'"side":"buy","quantity":81.666666666,"price":400.0,"order_type":"market",'
        b'"status":"accepted","nav":100000.0,"model":"EqualWeightModel_v1",'
        b'"broker_order_id":"47cca702-4d9c-5aa9-9c0b-70dbc83e7420",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 INFO  order_submitted: buy 81.6667 QQQ market r'
        b'ef 400.00 [EqualWeightModel_v1] tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy '
        b'accepted\n'),
    ('recovery_order_sent_not_recorded', 'order_submitted', 2): (
        'orders.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"order_submitted",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy","symbol":"SPY",'
        b'"side":"buy","quantity":65.333333333,"price":500.0,"order_type":"market",'
        b'"status":"accepted","nav":100000.0,"model":"EqualWeightModel_v1",'
        b'"broker_order_id":"e0a25752-2b83-5f2c-84da-97600cba70ed",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 INFO  order_submitted: buy 65.3333 SPY market r'
        b'ef 500.00 [EqualWeightModel_v1] tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy '
        b'accepted\n'),
    ('recovery_order_sent_not_recorded', 'order_submitted', 3): (
        'orders.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"order_submitted",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy","symbol":"TLT",'
        b'"side":"buy","quantity":362.962962962,"price":90.0,"order_type":"market",'
        b'"status":"filled","nav":99980.4,"model":"EqualWeightModel_v1",'
        b'"broker_order_id":"0b85a946-141e-5d08-8222-a1293a49e1a7",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  order_submitted: buy 362.963 TLT market r'
        b'ef 90.00 [EqualWeightModel_v1] tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy f'
        b'illed\n'),
    ('recovery_order_sent_not_recorded', 'trade_executed', 1): (
        'trades.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"trade_executed",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy","symbol":"QQQ",'
        b'"side":"buy","quantity":81.666666666,"price":400.08,"value":32673.2,'
        b'"new_position":81.666666666,"nav":99993.47,"model":"EqualWeightModel_v1",'
        b'"fill_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy-1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 INFO  trade_executed: buy 81.6667 QQQ @ 400.080'
        b'0 = 32673.20; position 81.6667,'
        b' nav 99993.47 (tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy)\n'),
    ('recovery_order_sent_not_recorded', 'trade_executed', 2): (
        'trades.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"trade_executed",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy","symbol":"SPY",'
        b'"side":"buy","quantity":65.333333333,"price":500.1,"value":32673.2,'
        b'"new_position":65.333333333,"nav":99986.93,"model":"EqualWeightModel_v1",'
        b'"fill_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy-1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 INFO  trade_executed: buy 65.3333 SPY @ 500.100'
        b'0 = 32673.20; position 65.3333,'
        b' nav 99986.93 (tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy)\n'),
    ('recovery_order_sent_not_recorded', 'trade_executed', 3): (
        'trades.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"trade_executed",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy","symbol":"TLT",'
        b'"side":"buy","quantity":362.962962962,"price":90.018,"value":32673.2,'
        b'"new_position":362.962962962,"nav":99980.4,"model":"EqualWeightModel_v1",'
        b'"fill_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy-1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  trade_executed: buy 362.963 TLT @ 90.0180'
        b' = 32673.20; position 362.963,'
        b' nav 99980.40 (tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy)\n'),
    ('recovery_order_rejected_before_recorded', 'order_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"order_error",'
        b'"symbol":"TLT","side":"buy","quantity":362.962962962,'
        b'"error":"halted: trading suspended in TLT",'
        b'"order_data":{"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy",'
        b'"symbol":"TLT","side":"buy","quantity":362.962962962,"order_type":"market",'
        b'"limit_price":null,"reference_price":90.0,"model":"EqualWeightModel_v1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"},"model":"EqualWeightModel_v1",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 ERROR order_error: buy 362.963 TLT [EqualWeight'
        b'Model_v1] tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy: halted: trading suspe'
        b'nded in TLT\n'),
    ('recovery_order_rejected_before_recorded', 'order_error', 2): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"order_error",'
        b'"symbol":"TLT","side":"buy","quantity":362.820682222,'
        b'"error":"rejected by the broker after it accepted the order: halted: trading sus'
        b'pended in TLT",'
        b'"order_data":{"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy",'
        b'"symbol":"TLT","side":"buy","quantity":362.820682222,"order_type":"market",'
        b'"limit_price":null,"reference_price":90.0,"model":"EqualWeightModel_v1",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"},"model":"EqualWeightModel_v1",'
        b'"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 ERROR order_error: buy 362.821 TLT [EqualWeight'
        b'Model_v1] tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy: rejected by the broke'
        b'r after it accepted the order: halted: trading suspended in TLT\n'),
    ('recovery_fill_not_written', 'trade_executed', 1): (
        'trades.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"trade_executed",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy","symbol":"QQQ",'
        b'"side":"buy","quantity":81.666666666,"price":400.08,"value":32673.2,'
        b'"new_position":81.666666666,"nav":99993.47,"model":"EqualWeightModel_v1",'
        b'"fill_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy-1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  trade_executed: buy 81.6667 QQQ @ 400.080'
        b'0 = 32673.20; position 81.6667,'
        b' nav 99993.47 (tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy)\n'),
    ('recovery_fill_not_written', 'trade_executed', 2): (
        'trades.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"trade_executed",'
        b'"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-SPY-buy","symbol":"SPY",'
        b'"side":"buy","quantity":65.3269306,"price":500.1,"value":32670.0,'
        b'"new_position":65.3269306,"nav":99986.93,"model":"EqualWeightModel_v1",'
        b'"fill_id":"tb-20250303T151500Z-EqualWeightModel_v1-SPY-buy-1",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  trade_executed: buy 65.3269 SPY @ 500.100'
        b'0 = 32670.00; position 65.3269,'
        b' nav 99986.93 (tb-20250303T151500Z-EqualWeightModel_v1-SPY-buy)\n'),
    ('recovery_fill_not_written', 'trade_executed', 3): (
        'trades.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"trade_executed",'
        b'"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy","symbol":"TLT",'
        b'"side":"buy","quantity":362.927392222,"price":90.018,"value":32670.0,'
        b'"new_position":362.927392222,"nav":99980.4,"model":"EqualWeightModel_v1",'
        b'"fill_id":"tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy-1",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  trade_executed: buy 362.927 TLT @ 90.0180'
        b' = 32670.00; position 362.927,'
        b' nav 99980.40 (tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy)\n'),
}
